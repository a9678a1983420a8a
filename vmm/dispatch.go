package vmm

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/vmm-dev/vmm/kvm"
)

// exitHandler turns decoded vCPU exits into bus accesses or an end of the
// run. It knows nothing of KVM fds, so it is tested with hand-made exits.
type exitHandler struct {
	pio, mmio     *Bus
	unhandledPIO  atomic.Uint64
	unhandledMMIO atomic.Uint64

	mu     sync.Mutex
	byKind exitTally // every ended vCPU's tally, summed
}

// verdict is what the run loop does after an exit: go on, or end the run.
type verdict struct {
	stop   bool
	reason Reason
	detail string
}

var resume = verdict{}

// handle dispatches one exit. Port and MMIO accesses nobody handles read as
// all-ones and are counted; they never end the run. The port and MMIO paths
// neither allocate nor format: a guest may make them by the million.
func (h *exitHandler) handle(e *kvm.Exit) verdict {
	switch e.Reason {
	case kvm.KVM_EXIT_IO:
		h.handleIO(&e.IO)
		return resume
	case kvm.KVM_EXIT_MMIO:
		h.handleMMIO(&e.MMIO)
		return resume
	case kvm.KVM_EXIT_INTR, kvm.KVM_EXIT_HLT:
		// An interruption (signal, immediate_exit) or a HLT without an
		// in-kernel irqchip: the run loop decides whether to go on.
		return resume
	case kvm.KVM_EXIT_SHUTDOWN:
		return verdict{stop: true, reason: ReasonTripleFault}
	case kvm.KVM_EXIT_FAIL_ENTRY:
		return verdict{stop: true, reason: ReasonFailEntry,
			detail: fmt.Sprintf("hardware entry failure reason %#x on CPU %d", e.FailEntry.Reason, e.FailEntry.CPU)}
	case kvm.KVM_EXIT_INTERNAL_ERROR:
		return verdict{stop: true, reason: ReasonInternalError, detail: e.Internal.String()}
	case kvm.KVM_EXIT_SYSTEM_EVENT:
		switch e.SystemEvent.Type {
		case kvm.KVM_SYSTEM_EVENT_RESET:
			return verdict{stop: true, reason: ReasonReset}
		case kvm.KVM_SYSTEM_EVENT_SHUTDOWN:
			return verdict{stop: true, reason: ReasonPowerOff}
		}
		return verdict{stop: true, reason: ReasonVMMError, detail: fmt.Sprintf("unexpected system event %d", e.SystemEvent.Type)}
	case kvm.KVM_EXIT_EXCEPTION:
		return verdict{stop: true, reason: ReasonVMMError,
			detail: fmt.Sprintf("unexpected exception exit: vector %d, error code %#x", e.Exception.Exception, e.Exception.ErrorCode)}
	}
	return verdict{stop: true, reason: ReasonVMMError, detail: fmt.Sprintf("unexpected KVM exit reason %d (%v)", uint32(e.Reason), e.Reason)}
}

func (h *exitHandler) handleIO(e *kvm.ExitIO) {
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

func (h *exitHandler) handleMMIO(e *kvm.ExitMMIO) {
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

// exitTally counts one vCPU's exits by reason. Only that vCPU's thread
// writes it, so counting costs an increment, with no atomic or shared
// cache line; it joins the machine's total when the vCPU ends.
// KVM's reasons stop in the forties; the last slot also takes any later.
type exitTally [64]uint64

func (t *exitTally) add(r kvm.ExitReason) { t[min(uint64(r), uint64(len(t)-1))]++ }

// addTally adds an ended vCPU's tally to the machine's.
func (h *exitHandler) addTally(t *exitTally) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for r, n := range t {
		h.byKind[r] += n
	}
}

// ExitCounts counts vCPU exits by KVM exit reason, over all vCPUs.
type ExitCounts map[kvm.ExitReason]uint64

// String lists the counts by reason number: "io=20003 mmio=20000 intr=2".
func (c ExitCounts) String() string {
	rs := slices.Sorted(maps.Keys(c))
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%v=%d", r, c[r])
	}
	return strings.Join(parts, " ")
}

// ExitCounts returns the exits the machine's vCPUs took, by reason: the
// figures behind an exit-heavy guest's speed. A vCPU's exits are added when
// it stops, so the counts are complete once Run has returned.
func (m *Machine) ExitCounts() ExitCounts {
	c := ExitCounts{}
	if m.exits == nil {
		return c
	}
	m.exits.mu.Lock()
	defer m.exits.mu.Unlock()
	for r, n := range m.exits.byKind {
		if n != 0 {
			c[kvm.ExitReason(r)] = n
		}
	}
	return c
}
