package vmm

import (
	"bytes"
	"testing"

	"github.com/vmm-dev/vmm/kvm"
)

func newTestHandler(t *testing.T) (*exitHandler, *recorder) {
	t.Helper()
	h := &exitHandler{pio: NewBus("pio"), mmio: NewBus("mmio")}
	d := &recorder{fill: 0x42}
	if err := h.pio.Insert(0x3f8, 8, "com1", d); err != nil {
		t.Fatal(err)
	}
	if err := h.mmio.Insert(0xd000_0000, 0x1000, "dev", d); err != nil {
		t.Fatal(err)
	}
	return h, d
}

func ioExit(io kvm.ExitIO) *kvm.Exit       { return &kvm.Exit{Reason: kvm.KVM_EXIT_IO, IO: io} }
func mmioExit(mmio kvm.ExitMMIO) *kvm.Exit { return &kvm.Exit{Reason: kvm.KVM_EXIT_MMIO, MMIO: mmio} }

func internalErrorExit() kvm.Exit {
	return kvm.Exit{Reason: kvm.KVM_EXIT_INTERNAL_ERROR,
		Internal: kvm.ExitInternalError{Suberror: kvm.KVM_INTERNAL_ERROR_EMULATION, Insn: []byte{0x0f, 0x01, 0xca}}}
}

func TestHandle_UnhandledPortRead_IsAllOnesAndCounted(t *testing.T) {
	h, _ := newTestHandler(t)
	data := []byte{0, 0}
	v := h.handle(ioExit(kvm.ExitIO{Port: 0x5555, Size: 2, Count: 1, In: true, Data: data}))
	if v.stop {
		t.Fatal("an unhandled port must not end the run")
	}
	if !bytes.Equal(data, []byte{0xff, 0xff}) {
		t.Fatalf("read %x, want ffff", data)
	}
	h.handle(ioExit(kvm.ExitIO{Port: 0x5555, Size: 1, Count: 1, Data: []byte{1}}))
	h.handle(mmioExit(kvm.ExitMMIO{Addr: 0xe000_0000, Data: make([]byte, 4)}))
	if c := h.counts(); c.PIO != 2 || c.MMIO != 1 {
		t.Fatalf("counts %+v, want 2 pio, 1 mmio", c)
	}
}

func TestHandle_RepOuts_DispatchesEachElement(t *testing.T) {
	h, d := newTestHandler(t)
	h.handle(ioExit(kvm.ExitIO{Port: 0x3f8, Size: 1, Count: 3, Data: []byte("abc")}))
	if len(d.writes) != 3 {
		t.Fatalf("%d writes, want 3", len(d.writes))
	}
}

func TestHandle_MMIORead_FromDevice(t *testing.T) {
	h, d := newTestHandler(t)
	data := make([]byte, 4)
	h.handle(mmioExit(kvm.ExitMMIO{Addr: 0xd000_0010, Data: data}))
	if d.reads[0] != 0x10 || data[3] != 0x42 {
		t.Fatalf("reads %v data %x", d.reads, data)
	}
	if c := h.counts(); c.MMIO != 0 {
		t.Fatalf("handled access counted as unhandled: %+v", c)
	}
}

func TestHandle_EndingExits(t *testing.T) {
	h, _ := newTestHandler(t)
	for _, tc := range []struct {
		exit   kvm.Exit
		reason Reason
		status int
	}{
		{kvm.Exit{Reason: kvm.KVM_EXIT_SHUTDOWN}, ReasonTripleFault, StatusTripleFault},
		{kvm.Exit{Reason: kvm.KVM_EXIT_FAIL_ENTRY, FailEntry: kvm.ExitFailEntry{Reason: 7}}, ReasonFailEntry, StatusFailEntry},
		{internalErrorExit(), ReasonInternalError, StatusInternalError},
		{kvm.Exit{Reason: kvm.KVM_EXIT_SYSTEM_EVENT, SystemEvent: kvm.ExitSystemEvent{Type: kvm.KVM_SYSTEM_EVENT_RESET}}, ReasonReset, StatusGuestOff},
		{kvm.Exit{Reason: kvm.KVM_EXIT_SYSTEM_EVENT, SystemEvent: kvm.ExitSystemEvent{Type: kvm.KVM_SYSTEM_EVENT_SHUTDOWN}}, ReasonPowerOff, StatusGuestOff},
		{kvm.Exit{Reason: kvm.KVM_EXIT_EXCEPTION}, ReasonVMMError, StatusVMMError},
		{kvm.Exit{Reason: 77}, ReasonVMMError, StatusVMMError},
	} {
		v := h.handle(&tc.exit)
		if !v.stop || v.reason != tc.reason || v.reason.Status() != tc.status {
			t.Errorf("%#v: got %+v (status %d), want %v (status %d)", tc.exit, v, v.reason.Status(), tc.reason, tc.status)
		}
	}
}

func TestHandle_InternalError_DetailHasInstructionBytes(t *testing.T) {
	h, _ := newTestHandler(t)
	e := internalErrorExit()
	v := h.handle(&e)
	if !bytes.Contains([]byte(v.detail), []byte("0f 01 ca")) {
		t.Fatalf("detail %q lacks the instruction bytes", v.detail)
	}
}

func TestHandle_Interruption_Resumes(t *testing.T) {
	h, _ := newTestHandler(t)
	for _, r := range []kvm.ExitReason{kvm.KVM_EXIT_INTR, kvm.KVM_EXIT_HLT} {
		if v := h.handle(&kvm.Exit{Reason: r}); v.stop {
			t.Fatalf("%v must leave the decision to the run loop", r)
		}
	}
}

// The exits an exit-heavy guest makes by the million, claimed or not, must
// make no garbage and no formatted text.
func TestHandle_PortAndMMIO_DoNotAllocate(t *testing.T) {
	h := &exitHandler{pio: NewBus("pio"), mmio: NewBus("mmio")}
	if err := h.pio.Insert(0x3f8, 8, "com1", nopDevice{}); err != nil {
		t.Fatal(err)
	}
	if err := h.mmio.Insert(0xd000_0000, 0x1000, "dev", nopDevice{}); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 4)
	for _, e := range []*kvm.Exit{
		ioExit(kvm.ExitIO{Port: 0x80, Size: 1, Count: 1, Data: data[:1]}),           // unclaimed write
		ioExit(kvm.ExitIO{Port: 0x80, Size: 1, Count: 1, In: true, Data: data[:1]}), // unclaimed read
		ioExit(kvm.ExitIO{Port: 0x3f8, Size: 1, Count: 1, Data: data[:1]}),          // claimed
		mmioExit(kvm.ExitMMIO{Addr: 0xe000_0000, Write: true, Data: data}),          // unclaimed write
		mmioExit(kvm.ExitMMIO{Addr: 0xe000_0000, Data: data}),                       // unclaimed read
		mmioExit(kvm.ExitMMIO{Addr: 0xd000_0010, Write: true, Data: data}),          // claimed
	} {
		var tally exitTally
		if n := testing.AllocsPerRun(100, func() {
			tally.add(e.Reason)
			if v := h.handle(e); v.stop {
				t.Fatalf("%+v ended the run", e)
			}
		}); n != 0 {
			t.Errorf("%v exit %+v: %v allocations, want 0", e.Reason, e, n)
		}
	}
}

type nopDevice struct{}

func (nopDevice) Read(uint64, []byte)  {}
func (nopDevice) Write(uint64, []byte) {}

func TestExitCounts_SumsVCPUTallies(t *testing.T) {
	m := &Machine{exits: &exitHandler{}}
	var a, b exitTally
	for range 3 {
		a.add(kvm.KVM_EXIT_IO)
	}
	b.add(kvm.KVM_EXIT_IO)
	b.add(kvm.KVM_EXIT_MMIO)
	b.add(1000) // past every reason KVM has: still counted
	m.exits.addTally(&a)
	m.exits.addTally(&b)
	c := m.ExitCounts()
	if c[kvm.KVM_EXIT_IO] != 4 || c[kvm.KVM_EXIT_MMIO] != 1 || len(c) != 3 {
		t.Fatalf("counts %v", c)
	}
	if got := c.String(); got != "io=4 mmio=1 reason_63=1" {
		t.Fatalf("String() = %q", got)
	}
}

// BenchmarkHandle is vmm's share of the exits benchmark's exits: a write to
// an unclaimed port and to an unclaimed MMIO address, on buses holding
// vmm's usual devices.
func BenchmarkHandle(b *testing.B) {
	h := &exitHandler{pio: NewBus("pio"), mmio: NewBus("mmio")}
	for _, r := range []struct{ base, size uint64 }{{0x60, 1}, {0x64, 1}, {0x3f8, 8}, {0x600, 8}, {0xcf8, 8}} {
		if err := h.pio.Insert(r.base, r.size, "legacy", nopDevice{}); err != nil {
			b.Fatal(err)
		}
	}
	if err := h.mmio.Insert(0xc000_0000, 0x4000, "bar", nopDevice{}); err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 4)
	for _, e := range []*kvm.Exit{
		ioExit(kvm.ExitIO{Port: 0x80, Size: 1, Count: 1, Data: data[:1]}),
		mmioExit(kvm.ExitMMIO{Addr: 0xd000_0000, Write: true, Data: data}),
	} {
		b.Run(e.Reason.String(), func(b *testing.B) {
			b.ReportAllocs()
			var tally exitTally
			for range b.N {
				tally.add(e.Reason)
				h.handle(e)
			}
		})
	}
}
