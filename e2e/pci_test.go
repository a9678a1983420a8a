package e2e

import (
	"testing"
	"time"

	"github.com/vmm-dev/vmm/internal/microguest"
	"github.com/vmm-dev/vmm/vmtest"
)

// TestPCI_HostBridgeEnumerates has a guest scan bus 0 through 0xCF8/0xCFC:
// the host bridge answers at device 0 and every other slot reads all-ones.
func TestPCI_HostBridgeEnumerates(t *testing.T) {
	vmtest.RequireKVM(t)
	res := vmtest.Run(t, vmtest.Config{Kernel: microguest.BuildT(t, "pci"), Memory: "32M"}, 10*time.Second)
	want := "pci: device 0 vendor=0x8086 device=0xd57 class=0x60000\npci: 1 device(s) on bus 0\n"
	if res.Code != 0 || res.Console != want {
		t.Fatalf("status %d, console:\n%s\nwant:\n%s", res.Code, res.Console, want)
	}
}
