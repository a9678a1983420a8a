package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/internal/microguest"
	"github.com/vmm-dev/vmm/vmm"
	"github.com/vmm-dev/vmm/vmtest"
)

// TestACPI_TablesAndPowerOff boots a guest that finds the RSDP as an OS
// does, counts the CPUs in the MADT and powers off through the FADT's
// PM1a_CNT: the run must end with status 0 and the power-off reason.
func TestACPI_TablesAndPowerOff(t *testing.T) {
	vmtest.RequireKVM(t)
	kernel := microguest.BuildT(t, "acpi")
	for _, cpus := range []int{1, 3, 8} {
		t.Run(fmt.Sprintf("cpus=%d", cpus), func(t *testing.T) {
			res := vmtest.Run(t, vmtest.Config{Kernel: kernel, Memory: "32M", CPUs: cpus}, 10*time.Second)
			want := fmt.Sprintf("acpi: rsdp at 0xe0000\nacpi: table FACP\nacpi: table APIC\nacpi: cpus %d\nacpi: pm1a_cnt 0x604\nacpi: powering off\n", cpus)
			if res.Console != want {
				t.Errorf("console:\n%s\nwant:\n%s", res.Console, want)
			}
			if res.Code != vmm.StatusGuestOff || !strings.Contains(res.Stderr, "guest powered off: ACPI S5") {
				t.Errorf("status %d, stderr %q; want %d and an ACPI power-off", res.Code, res.Stderr, vmm.StatusGuestOff)
			}
		})
	}
}

// TestACPI_PowerButtonOnSIGTERM: SIGTERM presses the ACPI power button; a
// guest that handles it (as Linux does) clears the event and powers off,
// and vmm ends with status 0 without waiting for the stop timeout.
func TestACPI_PowerButtonOnSIGTERM(t *testing.T) {
	vm := vmtest.Start(t, vmtest.Config{Kernel: guest(t, "pwrbtn"), Memory: "32M", Args: []string{"--rng=false", "--stop-timeout=30s"}})
	vm.Expect(`pwrbtn: ready\n`, guestTimeout)
	start := time.Now()
	vm.Signal(syscall.SIGTERM)
	vm.Expect(`pwrbtn: pressed\n`, guestTimeout)
	if code := vm.Wait(guestTimeout); code != 0 {
		t.Fatalf("vmm exited %d after the guest powered off, want 0; stderr:\n%s", code, vm.Stderr())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v: vmm waited for the stop timeout instead of the guest", d)
	}
	if !strings.Contains(vm.Stderr(), "pressing the ACPI power button") || !strings.Contains(vm.Stderr(), "guest powered off") {
		t.Errorf("stderr:\n%s", vm.Stderr())
	}
}
