package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/guestinit/protocol"
	"github.com/vmm-dev/vmm/images"
)

// TestLinux_QEMUTCG_RunConfigReachesGuest proves the per-run config path of
// `vmm run` on the guest side: the host appends a small archive holding
// the run config to the cached initramfs, the kernel unpacks both, and
// guestinit decodes the config. QEMU's software emulator is the reference
// VMM here (see linux_test.go).
func TestLinux_QEMUTCG_RunConfigReachesGuest(t *testing.T) {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Fatal("qemu-system-x86_64 not found: run `make deps` (installs Debian's qemu-system-x86)")
	}
	kernel, base := linuxGuest(t)
	cfg := protocol.RunConfig{Version: protocol.RunConfigVersion, Args: []string{"echo", "hi"}, Hostname: "box"}
	initrd := filepath.Join(t.TempDir(), "run.cpio")
	f, err := os.Create(initrd)
	if err != nil {
		t.Fatal(err)
	}
	if err := images.WriteRunInitramfs(f, base, cfg); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), linuxBootTime)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu,
		"-accel", "tcg", "-M", qemuMachine, "-cpu", "max", "-m", "256M",
		"-nographic", "-no-reboot",
		"-kernel", kernel.Path, "-initrd", initrd, "-append", linuxCmdline+" vmm.check="+protocol.CheckRunConfig)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("QEMU still running after %v, killed; console end:\n%s", linuxBootTime, consoleTail(string(out)))
	}
	if err != nil {
		t.Fatalf("%s: %v; console end:\n%s", cmd, err, consoleTail(string(out)))
	}
	var got *protocol.Result
	for _, r := range protocol.ParseResults(string(out)) {
		if r.Name == protocol.CheckRunConfig {
			got = &r
		}
	}
	if got == nil || !got.OK() {
		t.Fatalf("no passing %s result (%v); console end:\n%s", protocol.CheckRunConfig, got, consoleTail(string(out)))
	}
	if h, _ := got.Get("hostname"); h != "box" {
		t.Errorf("guest decoded hostname %q, want box", h)
	}
	if n, _ := got.Get("args"); n != "2" {
		t.Errorf("guest decoded %s args, want 2", n)
	}
	t.Logf("QEMU TCG: run config decoded in the guest; whole boot %v", time.Since(start).Round(time.Millisecond))
}
