package e2e

import (
	"testing"

	"github.com/vmm-dev/vmm/vmm"
	"github.com/vmm-dev/vmm/vmm/doctor"
	"github.com/vmm-dev/vmm/vmtest"
)

// TestInt3_FallbackEmulator runs the int3 guest, which takes a #BP through
// its own IDT, returns with iretq and runs stac; clac: what a Linux 6.1
// kernel does in its alternatives self-test and exception entry. With the
// software-kvm profile the VMM performs what KVM cannot (vmm/emulate).
func TestInt3_FallbackEmulator(t *testing.T) {
	cfg := vmtest.Config{Kernel: guest(t, "int3"), Args: []string{"--compat=software-kvm"}}
	res := vmtest.Run(t, cfg, guestTimeout)
	if res.Code != vmm.StatusGuestOff {
		t.Errorf("exit status %d, want %d", res.Code, vmm.StatusGuestOff)
	}
	want := "int3: before\nint3: handler ran 1, back at after_int3\nclac ok\n"
	if res.Console != want {
		t.Errorf("console = %q, want %q", res.Console, want)
	}
}

// TestInt3_WithoutFallback: on a software-only KVM the same guest ends at
// its int3 with KVM's emulation failure (status 4) and the bytes at RIP; on
// a hardware KVM it runs to the end by itself.
func TestInt3_WithoutFallback(t *testing.T) {
	cfg := vmtest.Config{Kernel: guest(t, "int3"), Args: []string{"--compat=off"}}
	res := vmtest.Run(t, cfg, guestTimeout)
	if !doctor.SoftwareKVM() {
		if res.Code != vmm.StatusGuestOff || res.Console != "int3: before\nint3: handler ran 1, back at after_int3\nclac ok\n" {
			t.Errorf("hardware KVM: exit status %d, console %q", res.Code, res.Console)
		}
		return
	}
	if res.Code != vmm.StatusInternalError {
		t.Errorf("exit status %d, want %d", res.Code, vmm.StatusInternalError)
	}
	matchAll(t, "console", res.Console, []string{`\Aint3: before\n\z`})
	matchAll(t, "stderr", res.Stderr, []string{
		`(?m)^vmm: KVM internal error: suberror 1 \(emulation failure\), instruction bytes cc `,
	})
}
