package e2e

import (
	"testing"

	"github.com/vmm-dev/vmm/vmm"
	"github.com/vmm-dev/vmm/vmtest"
)

// TestSMP_SecondCPUStarts has the boot CPU start CPU 1 with INIT and
// STARTUP IPIs and a real-mode trampoline, as an OS does; the AP reports
// its APIC ID. With one vCPU nobody answers, which the guest says within
// its 2 s wait.
func TestSMP_SecondCPUStarts(t *testing.T) {
	kernel := guest(t, "smp")
	for _, tc := range []struct {
		cpus int
		want string
	}{
		{2, "smp: cpu with apic id 1 started\n"},
		{1, "smp: cpu 1 did not start\n"},
	} {
		res := vmtest.Run(t, vmtest.Config{Kernel: kernel, Memory: "32M", CPUs: tc.cpus}, guestTimeout)
		if res.Console != tc.want || res.Code != vmm.StatusGuestOff {
			t.Errorf("--cpus %d: status %d, console %q, want 0 and %q; stderr:\n%s", tc.cpus, res.Code, res.Console, tc.want, res.Stderr)
		}
	}
}
