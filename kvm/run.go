package kvm

import (
	"encoding/binary"
	"fmt"
)

// Offsets into the mmap'd struct kvm_run (checked against C in abi_test.go).
const (
	runImmediateExit = 1
	runExitReason    = 8
	runUnion         = 32 // the exit-reason-specific union

	runIODirection  = runUnion + 0
	runIOSize       = runUnion + 1
	runIOPort       = runUnion + 2
	runIOCount      = runUnion + 4
	runIODataOffset = runUnion + 8

	runMMIOPhysAddr = runUnion + 0
	runMMIOData     = runUnion + 8
	runMMIOLen      = runUnion + 16
	runMMIOIsWrite  = runUnion + 20

	runFailEntryReason = runUnion + 0
	runFailEntryCPU    = runUnion + 8

	runExException = runUnion + 0
	runExErrorCode = runUnion + 4

	runInternalSuberror = runUnion + 0
	runInternalNdata    = runUnion + 4
	runInternalData     = runUnion + 8
	runEmulationFlags   = runUnion + 8
	runEmulationInsnLen = runUnion + 16
	runEmulationInsn    = runUnion + 17

	runSystemEventType  = runUnion + 0
	runSystemEventNdata = runUnion + 4
	runSystemEventData  = runUnion + 8

	runMinSize = runUnion + 256
)

// Exit is a decoded KVM_RUN exit. Dispatch on it with a type switch.
type Exit interface{ exitReason() uint32 }

// ExitIO is KVM_EXIT_IO: Count accesses of Size bytes to Port. Data aliases
// kvm_run: for an IN the handler fills it before the next KVM_RUN.
type ExitIO struct {
	Port  uint16
	Size  uint8
	Count uint32
	In    bool
	Data  []byte // Size*Count bytes
}

// ExitMMIO is KVM_EXIT_MMIO. Data aliases kvm_run: for a read the handler
// fills it before the next KVM_RUN.
type ExitMMIO struct {
	Addr  uint64
	Write bool
	Data  []byte // 1 to 8 bytes
}

// ExitHLT is KVM_EXIT_HLT (only without an in-kernel irqchip).
type ExitHLT struct{}

// ExitShutdown is KVM_EXIT_SHUTDOWN: on x86, a triple fault.
type ExitShutdown struct{}

// ExitIntr is KVM_EXIT_INTR, or KVM_RUN returning EINTR: a signal or
// immediate_exit interrupted the vCPU.
type ExitIntr struct{}

// ExitFailEntry is KVM_EXIT_FAIL_ENTRY: the hardware refused the guest state.
type ExitFailEntry struct {
	Reason uint64
	CPU    uint32
}

// ExitException is KVM_EXIT_EXCEPTION.
type ExitException struct {
	Exception uint32
	ErrorCode uint32
}

// ExitInternalError is KVM_EXIT_INTERNAL_ERROR. For emulation failures
// (Suberror == KVM_INTERNAL_ERROR_EMULATION) Insn holds the instruction
// bytes when KVM supplied them.
type ExitInternalError struct {
	Suberror uint32
	Data     []uint64
	Insn     []byte
}

// ExitSystemEvent is KVM_EXIT_SYSTEM_EVENT (shutdown, reset, crash).
type ExitSystemEvent struct {
	Type uint32
	Data []uint64
}

// ExitOther is any exit reason the VMM does not model.
type ExitOther struct{ Reason uint32 }

func (ExitIO) exitReason() uint32            { return KVM_EXIT_IO }
func (ExitMMIO) exitReason() uint32          { return KVM_EXIT_MMIO }
func (ExitHLT) exitReason() uint32           { return KVM_EXIT_HLT }
func (ExitShutdown) exitReason() uint32      { return KVM_EXIT_SHUTDOWN }
func (ExitIntr) exitReason() uint32          { return KVM_EXIT_INTR }
func (ExitFailEntry) exitReason() uint32     { return KVM_EXIT_FAIL_ENTRY }
func (ExitException) exitReason() uint32     { return KVM_EXIT_EXCEPTION }
func (ExitInternalError) exitReason() uint32 { return KVM_EXIT_INTERNAL_ERROR }
func (ExitSystemEvent) exitReason() uint32   { return KVM_EXIT_SYSTEM_EVENT }
func (e ExitOther) exitReason() uint32       { return e.Reason }

func (e ExitInternalError) String() string {
	s := fmt.Sprintf("suberror %d", e.Suberror)
	switch e.Suberror {
	case KVM_INTERNAL_ERROR_EMULATION:
		s += " (emulation failure)"
	case KVM_INTERNAL_ERROR_SIMUL_EX:
		s += " (exception while delivering an exception)"
	case KVM_INTERNAL_ERROR_DELIVERY_EV:
		s += " (event delivery failed)"
	}
	if len(e.Insn) > 0 {
		s += fmt.Sprintf(", instruction bytes % x", e.Insn)
	}
	if len(e.Data) > 0 {
		s += fmt.Sprintf(", data %#x", e.Data)
	}
	return s
}

// DecodeExit decodes the exit recorded in a kvm_run page. It is pure, so
// exit handling is testable with a hand-built page. Every length and offset
// is taken from the page and checked against it: a malformed page yields an
// error, never a panic.
func DecodeExit(run []byte) (Exit, error) {
	if len(run) < runMinSize {
		return nil, fmt.Errorf("kvm_run page is %d bytes, want at least %d", len(run), runMinSize)
	}
	le := binary.LittleEndian
	reason := le.Uint32(run[runExitReason:])
	switch reason {
	case KVM_EXIT_IO:
		size := run[runIOSize]
		count := le.Uint32(run[runIOCount:])
		off := le.Uint64(run[runIODataOffset:])
		n := uint64(size) * uint64(count)
		if size == 0 || off > uint64(len(run)) || n > uint64(len(run))-off {
			return nil, fmt.Errorf("KVM_EXIT_IO data (offset %#x, %d×%d bytes) outside the kvm_run page", off, count, size)
		}
		return ExitIO{
			Port:  le.Uint16(run[runIOPort:]),
			Size:  size,
			Count: count,
			In:    run[runIODirection] == KVM_EXIT_IO_IN,
			Data:  run[off : off+n : off+n],
		}, nil
	case KVM_EXIT_MMIO:
		n := le.Uint32(run[runMMIOLen:])
		if n == 0 || n > 8 {
			return nil, fmt.Errorf("KVM_EXIT_MMIO length %d, want 1 to 8", n)
		}
		return ExitMMIO{
			Addr:  le.Uint64(run[runMMIOPhysAddr:]),
			Write: run[runMMIOIsWrite] != 0,
			Data:  run[runMMIOData : runMMIOData+int(n) : runMMIOData+int(n)],
		}, nil
	case KVM_EXIT_HLT:
		return ExitHLT{}, nil
	case KVM_EXIT_SHUTDOWN:
		return ExitShutdown{}, nil
	case KVM_EXIT_INTR:
		return ExitIntr{}, nil
	case KVM_EXIT_FAIL_ENTRY:
		return ExitFailEntry{Reason: le.Uint64(run[runFailEntryReason:]), CPU: le.Uint32(run[runFailEntryCPU:])}, nil
	case KVM_EXIT_EXCEPTION:
		return ExitException{Exception: le.Uint32(run[runExException:]), ErrorCode: le.Uint32(run[runExErrorCode:])}, nil
	case KVM_EXIT_INTERNAL_ERROR:
		e := ExitInternalError{Suberror: le.Uint32(run[runInternalSuberror:])}
		e.Data = readU64s(run[runInternalData:], le.Uint32(run[runInternalNdata:]), 16)
		if e.Suberror == KVM_INTERNAL_ERROR_EMULATION && len(e.Data) >= 2 &&
			le.Uint64(run[runEmulationFlags:])&KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES != 0 {
			n := min(int(run[runEmulationInsnLen]), 15)
			e.Insn = append([]byte(nil), run[runEmulationInsn:runEmulationInsn+n]...)
		}
		return e, nil
	case KVM_EXIT_SYSTEM_EVENT:
		return ExitSystemEvent{
			Type: le.Uint32(run[runSystemEventType:]),
			Data: readU64s(run[runSystemEventData:], le.Uint32(run[runSystemEventNdata:]), 16),
		}, nil
	}
	return ExitOther{Reason: reason}, nil
}

func readU64s(b []byte, n, max uint32) []uint64 {
	n = min(n, max, uint32(len(b)/8))
	out := make([]uint64, n)
	for i := range out {
		out[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return out
}
