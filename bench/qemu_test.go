package main

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/internal/microguest"
	"github.com/vmm-dev/vmm/vmtest"
)

// TestQEMU_BootsMicroGuest checks what the benchmark rests on: QEMU boots
// a micro-guest through its 16-bit entry (boot.BuildBzImage's setup code,
// start.S's 32-bit entry) and exits when the guest resets. microvm needs
// -device i8042 for that; q35 (SeaBIOS, seconds) has one of its own.
func TestQEMU_BootsMicroGuest(t *testing.T) {
	vmtest.RequireKVM(t)
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Fatalf("QEMU is the benchmark's peer: %v (make deps installs qemu-system-x86)", err)
	}
	spec := vmSpec{kernel: microguest.BuildT(t, "hello"), memMiB: 128, cmdline: "console=ttyS0"}
	microvm := qemuArgs(spec)
	q35 := slices.Clone(microvm)
	q35[slices.Index(q35, "microvm")] = "q35"
	i := slices.Index(q35, "i8042")
	q35 = slices.Delete(q35, i-1, i+1)
	for _, tt := range []struct {
		name string
		args []string
	}{{"microvm", microvm}, {"q35", q35}} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "q35" && testing.Short() {
				t.Skip("SKIP in -short: SeaBIOS takes seconds")
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, qemu, tt.args...).CombinedOutput()
			if err != nil || !strings.Contains(string(out), helloLine) {
				t.Fatalf("qemu %s: %v\n%s", strings.Join(tt.args, " "), err, out)
			}
		})
	}
}
