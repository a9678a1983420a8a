package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/internal/microguest"
	"github.com/vmm-dev/vmm/vmtest"
)

// TestPCI_Enumerates has a guest scan bus 0 through 0xCF8/0xCFC: the host
// bridge answers at device 0, then the virtio devices in order (disks, then
// the entropy device), and every other slot reads all-ones.
func TestPCI_Enumerates(t *testing.T) {
	vmtest.RequireKVM(t)
	kernel := microguest.BuildT(t, "pci")
	disk := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(disk, make([]byte, 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	const bridge = "pci: device 0 vendor=0x8086 device=0xd57 class=0x60000\n"
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bridge only", []string{"--rng=false"}, bridge + "pci: 1 device(s) on bus 0\n"},
		{"disk and rng", []string{"--disk", disk}, bridge +
			"pci: device 1 vendor=0x1af4 device=0x1042 class=0x18000\n" +
			"pci: device 2 vendor=0x1af4 device=0x1044 class=0xff00\n" +
			"pci: 3 device(s) on bus 0\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := vmtest.Run(t, vmtest.Config{Kernel: kernel, Memory: "32M", Args: tc.args}, 10*time.Second)
			if res.Code != 0 || res.Console != tc.want {
				t.Fatalf("status %d, console:\n%s\nwant:\n%s", res.Code, res.Console, tc.want)
			}
		})
	}
}
