package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/guestinit"
	"github.com/vmm-dev/vmm/images"
	"github.com/vmm-dev/vmm/vmtest"
)

// The Linux tests boot Debian's cloud kernel with guestinit as /init. The
// QEMU tier runs everywhere (pure software emulation) and proves the guest
// side against a real kernel; the vmm tier runs where vmm doctor says Linux
// guests can boot.

const (
	linuxCmdline  = "console=ttyS0 panic=-1"
	linuxBootTime = 60 * time.Second
	// poweredOff is what the kernel prints once reboot(POWER_OFF) reaches
	// the machine; a panic or a reset prints something else.
	poweredOff = "reboot: Power down"
)

var markerLine = regexp.MustCompile(`(?m)^` + guestinit.Marker + ` (\S+)\r?$`)

// linuxGuest returns Debian's cloud kernel and an initramfs holding
// guestinit, both cached under images.CacheDir. Without a way to download
// the kernel it skips, loudly.
func linuxGuest(t *testing.T) (images.Kernel, string) {
	t.Helper()
	return debianGuest(t, func(ctx context.Context, cache string, _ images.Kernel) (string, error) {
		return images.GuestinitInitramfs(ctx, cache)
	})
}

// debianGuest returns Debian's cloud kernel and the initramfs initramfs
// builds for it. Without a way to download the kernel it skips, loudly.
func debianGuest(t *testing.T, initramfs func(ctx context.Context, cache string, k images.Kernel) (string, error)) (images.Kernel, string) {
	t.Helper()
	cache, err := images.CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	kernel, err := images.DebianCloudKernel(ctx, cache)
	if errors.Is(err, images.ErrKernelDownload) {
		t.Skipf("LINUX KERNEL UNAVAILABLE, TEST SKIPPED: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kernel %s ready in %v: %s", kernel.Version, time.Since(start).Round(time.Millisecond), kernel.Path)
	initrd, err := initramfs(ctx, cache, kernel)
	if err != nil {
		t.Fatal(err)
	}
	return kernel, initrd
}

// checkMarker fails unless console holds guestinit's marker naming release.
func checkMarker(t *testing.T, console, release string) {
	t.Helper()
	m := markerLine.FindStringSubmatch(console)
	if m == nil {
		t.Fatalf("no %q line on the console; its end:\n%s", guestinit.Marker, consoleTail(console))
	}
	if m[1] != release {
		t.Errorf("guest reports kernel %s, want %s", m[1], release)
	}
}

func consoleTail(s string) string {
	const n = 3000
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// qemuMachine is q35, not microvm: microvm boots ~0.5 s faster but has no
// HPET or ACPI PM timer, so under TCG on a loaded host the kernel's TSC
// calibration against the PIT fails and the boot hangs (without a
// tsc_early_khz= workaround). q35 also matches what vmm gives guests: ACPI
// power-off and virtio over PCI.
const qemuMachine = "q35"

func TestLinux_QEMUTCG_GuestinitMarker(t *testing.T) {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Fatal("qemu-system-x86_64 not found: run `make deps` (installs Debian's qemu-system-x86)")
	}
	kernel, initrd := linuxGuest(t)

	ctx, cancel := context.WithTimeout(context.Background(), linuxBootTime)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu,
		"-accel", "tcg", "-M", qemuMachine, "-cpu", "max", "-m", "256M",
		"-nographic", "-no-reboot",
		"-kernel", kernel.Path, "-initrd", initrd, "-append", linuxCmdline)
	console := &markerWatch{start: time.Now()}
	cmd.Stdout, cmd.Stderr = console, console
	err = cmd.Run()
	out, markerAt := console.result()
	if ctx.Err() != nil {
		t.Fatalf("QEMU still running after %v, killed; console end:\n%s", linuxBootTime, consoleTail(out))
	}
	if err != nil {
		t.Fatalf("%s: %v; console end:\n%s", cmd, err, consoleTail(out))
	}
	checkMarker(t, out, kernel.Version)
	if !strings.Contains(out, poweredOff) {
		t.Errorf("QEMU exited without %q: the guest did not power off; console end:\n%s", poweredOff, consoleTail(out))
	}
	t.Logf("QEMU TCG (%s): marker after %v", qemuMachine, markerAt.Round(time.Millisecond))
}

// markerWatch collects console output and notes when the marker arrived.
type markerWatch struct {
	mu       sync.Mutex
	start    time.Time
	buf      bytes.Buffer
	markerAt time.Duration
}

func (w *markerWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.markerAt == 0 && markerLine.Match(w.buf.Bytes()) {
		w.markerAt = time.Since(w.start)
	}
	return len(p), nil
}

func (w *markerWatch) result() (string, time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String(), w.markerAt
}

// doctorReport holds the fields of `vmm doctor --json` this file reads.
type doctorReport struct {
	LinuxGuests       bool   `json:"linux_guests"`
	LinuxGuestsReason string `json:"linux_guests_reason"`
}

// requireLinuxGuests skips the test, loudly and with vmm doctor's reason,
// where vmm cannot run Linux guests; it returns the vmm binary.
func requireLinuxGuests(t *testing.T) string {
	t.Helper()
	bin := vmtest.Binary(t)
	var stdout, stderr bytes.Buffer
	doctor := exec.Command(bin, "doctor", "--json")
	doctor.Stdout, doctor.Stderr = &stdout, &stderr
	runErr := doctor.Run() // non-zero when no guest can run; the report still says why
	var report doctorReport
	if err := json.Unmarshal(stdout.Bytes(), &report); err != nil {
		t.Fatalf("vmm doctor --json: %v (exit: %v); stderr:\n%s", err, runErr, stderr.String())
	}
	if !report.LinuxGuests {
		t.Skipf("LINUX TIER SKIPPED: vmm doctor says: %s", report.LinuxGuestsReason)
	}
	return bin
}

func TestLinux_VMM_GuestinitMarker(t *testing.T) {
	requireLinuxGuests(t)
	kernel, initrd := linuxGuest(t)

	start := time.Now()
	// guestinit powers off; vmm's ACPI PM registers end the run.
	vm := vmtest.Start(t, vmtest.Config{Kernel: kernel.Path, Initrd: initrd, Cmdline: linuxCmdline, Memory: "512M"})
	m := vm.Expect(markerLine.String(), linuxBootTime)
	t.Logf("vmm: marker after %v", time.Since(start).Round(time.Millisecond))
	if m[1] != kernel.Version {
		t.Errorf("guest reports kernel %s, want %s", m[1], kernel.Version)
	}
	if code := vm.Wait(10 * time.Second); code != 0 {
		t.Fatalf("vmm exited with status %d after the guest's power-off, want 0", code)
	}
}
