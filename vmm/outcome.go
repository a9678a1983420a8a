package vmm

import (
	"fmt"
	"maps"
	"sync"
)

// Reason says why a VM run ended.
type Reason int

const (
	ReasonNone          Reason = iota // still running
	ReasonReset                       // the guest asked for a reset (i8042, ACPI)
	ReasonPowerOff                    // the guest powered off
	ReasonTripleFault                 // KVM_EXIT_SHUTDOWN
	ReasonInternalError               // KVM_EXIT_INTERNAL_ERROR
	ReasonFailEntry                   // KVM_EXIT_FAIL_ENTRY
	ReasonVMMError                    // the VMM failed while the guest ran
	ReasonInterrupted                 // SIGINT, or the console escape
	ReasonTerminated                  // SIGTERM
	ReasonGuestPanic                  // the guest kernel panicked (then reset or powered off)
)

func (r Reason) String() string {
	switch r {
	case ReasonNone:
		return "running"
	case ReasonReset:
		return "guest reset"
	case ReasonPowerOff:
		return "guest powered off"
	case ReasonTripleFault:
		return "guest triple fault (KVM_EXIT_SHUTDOWN)"
	case ReasonInternalError:
		return "KVM internal error"
	case ReasonFailEntry:
		return "KVM could not enter the guest (KVM_EXIT_FAIL_ENTRY)"
	case ReasonVMMError:
		return "VMM error"
	case ReasonInterrupted:
		return "stopped by the user"
	case ReasonTerminated:
		return "stopped by SIGTERM"
	case ReasonGuestPanic:
		return "guest kernel panic"
	}
	return fmt.Sprintf("reason %d", int(r))
}

// Status is the process exit status a run that ended for this reason gets.
func (r Reason) Status() int {
	switch r {
	case ReasonReset, ReasonPowerOff:
		return StatusGuestOff
	case ReasonTripleFault:
		return StatusTripleFault
	case ReasonInternalError:
		return StatusInternalError
	case ReasonFailEntry:
		return StatusFailEntry
	case ReasonInterrupted:
		return StatusInterrupted
	case ReasonTerminated:
		return StatusTerminated
	case ReasonGuestPanic:
		return StatusGuestPanic
	}
	return StatusVMMError
}

// Outcome is how a run ended.
type Outcome struct {
	Reason Reason
	// Detail explains abnormal ends: the failing instruction bytes and
	// registers of an internal error, the vCPU that triple-faulted.
	Detail string
	// Unhandled counts guest accesses no device claimed. They read as
	// all-ones and are otherwise ignored, as on real hardware.
	Unhandled UnhandledCounts
	// Emulated counts the instructions the VMM performed for the guest
	// because KVM could not (the compatibility profile's fallback).
	Emulated map[string]uint64
	// ConsoleTail is the end of the guest's console: after an abnormal
	// end (Crashed), often the guest's own account of it.
	ConsoleTail string
}

// Crashed reports an end the guest did not ask for cleanly: a crash, a
// panic, a KVM or VMM error (not a reset, a power-off or a stop by signal).
func (o Outcome) Crashed() bool {
	switch o.Reason {
	case ReasonReset, ReasonPowerOff, ReasonInterrupted, ReasonTerminated:
		return false
	}
	return true
}

// emulatedCounts counts fallback-emulated instructions by mnemonic.
type emulatedCounts struct {
	mu sync.Mutex
	n  map[string]uint64
}

func (e *emulatedCounts) record(mnemonic string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.n == nil {
		e.n = map[string]uint64{}
	}
	e.n[mnemonic]++
}

func (e *emulatedCounts) snapshot() map[string]uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return maps.Clone(e.n)
}

// UnhandledCounts counts accesses to ports and MMIO addresses with no device.
type UnhandledCounts struct {
	PIO, MMIO uint64
}

func (o Outcome) String() string {
	s := o.Reason.String()
	if o.Detail != "" {
		s += ": " + o.Detail
	}
	return s
}
