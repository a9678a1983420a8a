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

func TestHandle_UnhandledPortRead_IsAllOnesAndCounted(t *testing.T) {
	h, _ := newTestHandler(t)
	data := []byte{0, 0}
	v := h.handle(kvm.ExitIO{Port: 0x5555, Size: 2, Count: 1, In: true, Data: data})
	if v.stop {
		t.Fatal("an unhandled port must not end the run")
	}
	if !bytes.Equal(data, []byte{0xff, 0xff}) {
		t.Fatalf("read %x, want ffff", data)
	}
	h.handle(kvm.ExitIO{Port: 0x5555, Size: 1, Count: 1, Data: []byte{1}})
	h.handle(kvm.ExitMMIO{Addr: 0xe000_0000, Data: make([]byte, 4)})
	if c := h.counts(); c.PIO != 2 || c.MMIO != 1 {
		t.Fatalf("counts %+v, want 2 pio, 1 mmio", c)
	}
}

func TestHandle_RepOuts_DispatchesEachElement(t *testing.T) {
	h, d := newTestHandler(t)
	h.handle(kvm.ExitIO{Port: 0x3f8, Size: 1, Count: 3, Data: []byte("abc")})
	if len(d.writes) != 3 {
		t.Fatalf("%d writes, want 3", len(d.writes))
	}
}

func TestHandle_MMIORead_FromDevice(t *testing.T) {
	h, d := newTestHandler(t)
	data := make([]byte, 4)
	h.handle(kvm.ExitMMIO{Addr: 0xd000_0010, Data: data})
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
		{kvm.ExitShutdown{}, ReasonTripleFault, StatusTripleFault},
		{kvm.ExitFailEntry{Reason: 7}, ReasonFailEntry, StatusFailEntry},
		{kvm.ExitInternalError{Suberror: kvm.KVM_INTERNAL_ERROR_EMULATION, Insn: []byte{0x0f, 0x01, 0xca}}, ReasonInternalError, StatusInternalError},
		{kvm.ExitSystemEvent{Type: kvm.KVM_SYSTEM_EVENT_RESET}, ReasonReset, StatusGuestOff},
		{kvm.ExitSystemEvent{Type: kvm.KVM_SYSTEM_EVENT_SHUTDOWN}, ReasonPowerOff, StatusGuestOff},
		{kvm.ExitOther{Reason: 77}, ReasonVMMError, StatusVMMError},
	} {
		v := h.handle(tc.exit)
		if !v.stop || v.reason != tc.reason || v.reason.Status() != tc.status {
			t.Errorf("%#v: got %+v (status %d), want %v (status %d)", tc.exit, v, v.reason.Status(), tc.reason, tc.status)
		}
	}
}

func TestHandle_InternalError_DetailHasInstructionBytes(t *testing.T) {
	h, _ := newTestHandler(t)
	v := h.handle(kvm.ExitInternalError{Suberror: kvm.KVM_INTERNAL_ERROR_EMULATION, Insn: []byte{0x0f, 0x01, 0xca}})
	if !bytes.Contains([]byte(v.detail), []byte("0f 01 ca")) {
		t.Fatalf("detail %q lacks the instruction bytes", v.detail)
	}
}

func TestHandle_Interruption_Resumes(t *testing.T) {
	h, _ := newTestHandler(t)
	if v := h.handle(kvm.ExitIntr{}); v.stop {
		t.Fatal("ExitIntr must leave the decision to the run loop")
	}
}
