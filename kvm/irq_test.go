package kvm

import (
	"encoding/binary"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vmm-dev/vmm/guestmem"
)

func TestDefaultIRQChipRoutes(t *testing.T) {
	rs := DefaultIRQChipRoutes()
	if len(rs) != 16+IOAPICPins {
		t.Fatalf("%d routes, want %d", len(rs), 16+IOAPICPins)
	}
	if _, err := encodeRouting(rs); err != nil {
		t.Fatal(err)
	}
	if _, err := encodeRouting([]Route{{GSI: 1}}); err == nil {
		t.Fatal("a route with neither target was accepted")
	}
}

// realModeVM builds a VM with an irqchip and 1 MiB of RAM and one vCPU in
// real mode at 0x1000 running code.
func realModeVM(t *testing.T, code []byte) (*VM, *VCPU) {
	t.Helper()
	if _, err := os.Stat(DevicePath); err != nil {
		t.Skipf("SKIP: %s not available (%v)", DevicePath, err)
	}
	sys, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Close() })
	vm, err := sys.CreateVM()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vm.Close() })
	mem, err := guestmem.New([]guestmem.RegionSpec{{Start: 0, Size: 1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	h := mem.HostRegions()[0]
	if err := vm.SetUserMemoryRegion(UserspaceMemoryRegion{MemorySize: h.Size, UserspaceAddr: uint64(h.HostAddr)}); err != nil {
		t.Fatal(err)
	}
	if err := mem.WriteAt(code, 0x1000); err != nil {
		t.Fatal(err)
	}
	if err := vm.CreateIRQChip(); err != nil {
		t.Fatal(err)
	}
	c, err := vm.CreateVCPU(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := c.GetSregs()
	if err != nil {
		t.Fatal(err)
	}
	s.CS.Base, s.CS.Selector = 0, 0
	if err := c.SetSregs(s); err != nil {
		t.Fatal(err)
	}
	if err := c.SetRegs(Regs{RIP: 0x1000, RFLAGS: 2}); err != nil {
		t.Fatal(err)
	}
	return vm, c
}

// TestIOEventFD_GuestWriteSignalsWithoutExit runs a real-mode guest that
// writes port 0x5F0 (an ioeventfd) and then port 0x5F1 (an ordinary exit):
// the first write must reach the eventfd and never the VMM.
func TestIOEventFD_GuestWriteSignalsWithoutExit(t *testing.T) {
	code := []byte{
		0xBA, 0xF0, 0x05, // mov dx, 0x5f0
		0xB0, 0x07, // mov al, 7
		0xEE,             // out dx, al
		0xBA, 0xF1, 0x05, // mov dx, 0x5f1
		0xEE,       // out dx, al
		0xEB, 0xFE, // jmp $
	}
	vm, c := realModeVM(t, code)
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(efd)
	cfg := IOEventFDConfig{Addr: 0x5F0, Len: 1, PIO: true}
	if err := vm.AssignIOEventFD(efd, cfg); err != nil {
		t.Fatal(err)
	}
	exit, err := c.Run()
	if err != nil {
		t.Fatal(err)
	}
	if exit.Reason != KVM_EXIT_IO || exit.IO.Port != 0x5F1 {
		t.Fatalf("first exit %#v, want the write to 0x5f1 (0x5f0 belongs to the ioeventfd)", exit)
	}
	var buf [8]byte
	if _, err := unix.Read(efd, buf[:]); err != nil {
		t.Fatalf("eventfd not signalled: %v", err)
	}
	if n := binary.LittleEndian.Uint64(buf[:]); n != 1 {
		t.Fatalf("eventfd count %d, want 1", n)
	}
	if err := vm.DeassignIOEventFD(efd, cfg); err != nil {
		t.Fatal(err)
	}
}

func TestIRQFDAndMSIRouting(t *testing.T) {
	vm, _ := realModeVM(t, []byte{0xEB, 0xFE})
	routes := append(DefaultIRQChipRoutes(), Route{GSI: 24, MSI: &MSIRoute{AddressLo: 0xFEE00000, Data: 0x41}})
	if err := vm.SetGSIRouting(routes); err != nil {
		t.Fatal(err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(efd)
	if err := vm.AssignIRQFD(efd, 24); err != nil {
		t.Fatal(err)
	}
	if err := vm.DeassignIRQFD(efd, 24); err != nil {
		t.Fatal(err)
	}
	if _, err := vm.SignalMSI(0xFEE00000, 0x41); err != nil {
		t.Fatal(err)
	}
}
