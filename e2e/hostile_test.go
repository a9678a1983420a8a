package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/vmm/netswitch"
	"github.com/vmm-dev/vmm/vmtest"
)

// TestHostileGuest: the hostile micro-guest writes garbage to every port
// and across the PCI hole, floods the UART, breaks every virtio device's
// queues (looping chains, buffers outside memory, index jumps, resets
// mid-request, notify storms, random common-config values) and fills PCI
// config space with random values. vmm must run it to its end, keep its
// devices' files intact and exit as the guest asks (a reset), without a
// panic.
func TestHostileGuest(t *testing.T) {
	kernel := guest(t, "hostile")
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(disk, make([]byte, 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	swDir, err := os.MkdirTemp("", "hostile-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(swDir)
	sw, err := netswitch.New(filepath.Join(swDir, "sw.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	vm := vmtest.Start(t, vmtest.Config{Kernel: kernel, Memory: "64M", Args: []string{
		"--disk", disk, "--net", "socket=" + sw.Addr(), "--port", "p,out=" + filepath.Join(dir, "port.out")}})
	start := time.Now()
	vm.Expect(`hostile: survived\n`, 120*time.Second)
	if code := vm.Wait(30 * time.Second); code != 0 {
		t.Fatalf("vmm exited %d, want 0 (the guest's reset)", code)
	}
	t.Logf("hostile guest ran to its end in %v", time.Since(start).Round(time.Millisecond))
	for _, bad := range []string{"panic", "goroutine ", "fatal error"} {
		if strings.Contains(vm.Stderr(), bad) {
			t.Fatalf("vmm's stderr holds %q:\n%s", bad, vm.Stderr())
		}
	}
	for _, phase := range []string{"ports", "uart", "virtio", "pci", "mmio"} {
		if !strings.Contains(vm.Console(), "hostile: "+phase+" done\n") {
			t.Errorf("phase %s did not finish", phase)
		}
	}
	if fi, err := os.Stat(disk); err != nil || fi.Size() != 64<<10 {
		t.Errorf("disk image %v, %v: want it still 64 KiB", fi, err)
	}
}
