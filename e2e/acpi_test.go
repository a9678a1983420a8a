package e2e

import (
	"fmt"
	"strings"
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
