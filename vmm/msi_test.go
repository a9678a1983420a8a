package vmm

import (
	"os"
	"testing"

	"github.com/vmm-dev/vmm/kvm"
)

// The router gives each device vector one GSI route and irqfd, moves the
// route when the guest reprograms the message, and never needs the
// KVM_SIGNAL_MSI fallback on a KVM with routing.
func TestMSIRouter_RoutesPerVector(t *testing.T) {
	if _, err := os.Stat("/dev/kvm"); err != nil {
		t.Skipf("KVM TEST SKIPPED: no /dev/kvm: %v", err)
	}
	sys, err := kvm.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	vm, err := sys.CreateVM()
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	if err := vm.CreateIRQChip(); err != nil {
		t.Fatal(err)
	}
	r := newMSIRouter(vm)
	defer r.close()

	r.fire(0, 0, 0xFEE0_0000, 0x41)
	r.fire(0, 0, 0xFEE0_0000, 0x41)
	if n := len(r.order); n != 1 || r.failed {
		t.Fatalf("%d routes (failed %v) after firing one vector twice, want 1", n, r.failed)
	}
	r.fire(0, 0, 0xFEE0_1000, 0x42) // the guest moved the vector
	r.fire(1, 3, 0xFEE0_0000, 0x43)
	if n := len(r.order); n != 2 || r.failed {
		t.Fatalf("%d routes (failed %v), want 2", n, r.failed)
	}
	first := r.routes[msiVector{0, 0}]
	if first.gsi != firstMSIGSI || first.addr != 0xFEE0_1000 || first.data != 0x42 || !first.installed {
		t.Errorf("device 0 vector 0 route %+v, want GSI %d to 0xfee01000/0x42 with its irqfd", *first, firstMSIGSI)
	}
	if second := r.routes[msiVector{1, 3}]; second.gsi != firstMSIGSI+1 {
		t.Errorf("device 1 vector 3 on GSI %d, want %d", second.gsi, firstMSIGSI+1)
	}
	// The table keeps KVM's irqchip routes in front of the MSI ones.
	if got, want := len(r.table()), len(kvm.DefaultIRQChipRoutes())+2; got != want {
		t.Errorf("routing table has %d entries, want %d", got, want)
	}
}
