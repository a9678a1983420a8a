package vmm

import (
	"fmt"
	"sync/atomic"

	"github.com/vmm-dev/vmm/kvm"
)

// exitHandler turns decoded vCPU exits into bus accesses or an end of the
// run. It knows nothing of KVM fds, so it is tested with hand-made exits.
type exitHandler struct {
	pio, mmio     *Bus
	unhandledPIO  atomic.Uint64
	unhandledMMIO atomic.Uint64
}

// verdict is what the run loop does after an exit: go on, or end the run.
type verdict struct {
	stop   bool
	reason Reason
	detail string
}

var resume = verdict{}

// handle dispatches one exit. Port and MMIO accesses nobody handles read as
// all-ones and are counted; they never end the run.
func (h *exitHandler) handle(e kvm.Exit) verdict {
	switch e := e.(type) {
	case kvm.ExitIO:
		h.handleIO(e)
		return resume
	case kvm.ExitMMIO:
		h.handleMMIO(e)
		return resume
	case kvm.ExitIntr, kvm.ExitHLT:
		// An interruption (signal, immediate_exit) or a HLT without an
		// in-kernel irqchip: the run loop decides whether to go on.
		return resume
	case kvm.ExitShutdown:
		return verdict{stop: true, reason: ReasonTripleFault}
	case kvm.ExitFailEntry:
		return verdict{stop: true, reason: ReasonFailEntry,
			detail: fmt.Sprintf("hardware entry failure reason %#x on CPU %d", e.Reason, e.CPU)}
	case kvm.ExitInternalError:
		return verdict{stop: true, reason: ReasonInternalError, detail: e.String()}
	case kvm.ExitSystemEvent:
		switch e.Type {
		case kvm.KVM_SYSTEM_EVENT_RESET:
			return verdict{stop: true, reason: ReasonReset}
		case kvm.KVM_SYSTEM_EVENT_SHUTDOWN:
			return verdict{stop: true, reason: ReasonPowerOff}
		}
		return verdict{stop: true, reason: ReasonVMMError, detail: fmt.Sprintf("unexpected system event %d", e.Type)}
	case kvm.ExitException:
		return verdict{stop: true, reason: ReasonVMMError,
			detail: fmt.Sprintf("unexpected exception exit: vector %d, error code %#x", e.Exception, e.ErrorCode)}
	case kvm.ExitOther:
		return verdict{stop: true, reason: ReasonVMMError, detail: fmt.Sprintf("unexpected KVM exit reason %d", e.Reason)}
	}
	return verdict{stop: true, reason: ReasonVMMError, detail: fmt.Sprintf("unexpected exit %T", e)}
}

func (h *exitHandler) handleIO(e kvm.ExitIO) {
	size := int(e.Size)
	// A string instruction (rep ins/outs) exits once with Count elements.
	for i := 0; i+size <= len(e.Data); i += size {
		d := e.Data[i : i+size]
		if e.In {
			if !h.pio.Read(uint64(e.Port), d) {
				fillOnes(d)
				h.unhandledPIO.Add(1)
			}
		} else if !h.pio.Write(uint64(e.Port), d) {
			h.unhandledPIO.Add(1)
		}
	}
}

func (h *exitHandler) handleMMIO(e kvm.ExitMMIO) {
	if e.Write {
		if !h.mmio.Write(e.Addr, e.Data) {
			h.unhandledMMIO.Add(1)
		}
		return
	}
	if !h.mmio.Read(e.Addr, e.Data) {
		fillOnes(e.Data)
		h.unhandledMMIO.Add(1)
	}
}

func (h *exitHandler) counts() UnhandledCounts {
	return UnhandledCounts{PIO: h.unhandledPIO.Load(), MMIO: h.unhandledMMIO.Load()}
}

// fillOnes makes an unclaimed read return all-ones, as an undriven bus does.
func fillOnes(b []byte) {
	for i := range b {
		b[i] = 0xff
	}
}
