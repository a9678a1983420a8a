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

// ExitReason is kvm_run.exit_reason: one of the KVM_EXIT_* constants.
type ExitReason uint32

// String names the reason as the kernel's KVM_EXIT_* constant does, less
// the prefix, in lower case ("io", "mmio", "intr"); "reason_N" for others.
func (r ExitReason) String() string {
	switch r {
	case KVM_EXIT_UNKNOWN:
		return "unknown"
	case KVM_EXIT_EXCEPTION:
		return "exception"
	case KVM_EXIT_IO:
		return "io"
	case KVM_EXIT_HYPERCALL:
		return "hypercall"
	case KVM_EXIT_DEBUG:
		return "debug"
	case KVM_EXIT_HLT:
		return "hlt"
	case KVM_EXIT_MMIO:
		return "mmio"
	case KVM_EXIT_IRQ_WINDOW_OPEN:
		return "irq_window_open"
	case KVM_EXIT_SHUTDOWN:
		return "shutdown"
	case KVM_EXIT_FAIL_ENTRY:
		return "fail_entry"
	case KVM_EXIT_INTR:
		return "intr"
	case KVM_EXIT_NMI:
		return "nmi"
	case KVM_EXIT_INTERNAL_ERROR:
		return "internal_error"
	case KVM_EXIT_SYSTEM_EVENT:
		return "system_event"
	}
	return fmt.Sprintf("reason_%d", uint32(r))
}

// Exit is a decoded KVM_RUN exit, a tagged union like kvm_run itself:
// Reason says which exit it is, and the field for that reason holds the
// details (IO for KVM_EXIT_IO, and so on); reasons without details have
// no field. It is a plain value so that decoding an exit allocates
// nothing: a VMM takes tens of thousands of exits a second.
type Exit struct {
	Reason      ExitReason
	IO          ExitIO            // KVM_EXIT_IO
	MMIO        ExitMMIO          // KVM_EXIT_MMIO
	FailEntry   ExitFailEntry     // KVM_EXIT_FAIL_ENTRY
	Exception   ExitException     // KVM_EXIT_EXCEPTION
	Internal    ExitInternalError // KVM_EXIT_INTERNAL_ERROR
	SystemEvent ExitSystemEvent   // KVM_EXIT_SYSTEM_EVENT
}

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
// error, never a panic. Port and MMIO exits, the frequent ones, are decoded
// without allocating; the data they carry aliases run.
//
// The result is named and filled field by field so that the ~200-byte Exit
// is built in place, not in temporaries that are then copied.
func DecodeExit(run []byte) (e Exit, err error) {
	if len(run) < runMinSize {
		return Exit{}, fmt.Errorf("kvm_run page is %d bytes, want at least %d", len(run), runMinSize)
	}
	le := binary.LittleEndian
	e.Reason = ExitReason(le.Uint32(run[runExitReason:]))
	switch e.Reason {
	case KVM_EXIT_IO:
		size := run[runIOSize]
		count := le.Uint32(run[runIOCount:])
		off := le.Uint64(run[runIODataOffset:])
		n := uint64(size) * uint64(count)
		if size == 0 || off > uint64(len(run)) || n > uint64(len(run))-off {
			return Exit{}, fmt.Errorf("KVM_EXIT_IO data (offset %#x, %d×%d bytes) outside the kvm_run page", off, count, size)
		}
		e.IO.Port = le.Uint16(run[runIOPort:])
		e.IO.Size = size
		e.IO.Count = count
		e.IO.In = run[runIODirection] == KVM_EXIT_IO_IN
		e.IO.Data = run[off : off+n : off+n]
	case KVM_EXIT_MMIO:
		n := le.Uint32(run[runMMIOLen:])
		if n == 0 || n > 8 {
			return Exit{}, fmt.Errorf("KVM_EXIT_MMIO length %d, want 1 to 8", n)
		}
		e.MMIO.Addr = le.Uint64(run[runMMIOPhysAddr:])
		e.MMIO.Write = run[runMMIOIsWrite] != 0
		e.MMIO.Data = run[runMMIOData : runMMIOData+int(n) : runMMIOData+int(n)]
	case KVM_EXIT_FAIL_ENTRY:
		e.FailEntry = ExitFailEntry{Reason: le.Uint64(run[runFailEntryReason:]), CPU: le.Uint32(run[runFailEntryCPU:])}
	case KVM_EXIT_EXCEPTION:
		e.Exception = ExitException{Exception: le.Uint32(run[runExException:]), ErrorCode: le.Uint32(run[runExErrorCode:])}
	case KVM_EXIT_INTERNAL_ERROR:
		ie := ExitInternalError{Suberror: le.Uint32(run[runInternalSuberror:])}
		ie.Data = readU64s(run[runInternalData:], le.Uint32(run[runInternalNdata:]), 16)
		if ie.Suberror == KVM_INTERNAL_ERROR_EMULATION && len(ie.Data) >= 2 &&
			le.Uint64(run[runEmulationFlags:])&KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES != 0 {
			n := min(int(run[runEmulationInsnLen]), 15)
			ie.Insn = append([]byte(nil), run[runEmulationInsn:runEmulationInsn+n]...)
		}
		e.Internal = ie
	case KVM_EXIT_SYSTEM_EVENT:
		e.SystemEvent = ExitSystemEvent{
			Type: le.Uint32(run[runSystemEventType:]),
			Data: readU64s(run[runSystemEventData:], le.Uint32(run[runSystemEventNdata:]), 16),
		}
	}
	// Other reasons (HLT, SHUTDOWN, INTR, and any the VMM does not model)
	// carry nothing it reads: the reason is the whole exit.
	return e, nil
}

func readU64s(b []byte, n, max uint32) []uint64 {
	n = min(n, max, uint32(len(b)/8))
	out := make([]uint64, n)
	for i := range out {
		out[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return out
}
