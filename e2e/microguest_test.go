package e2e

import (
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/vmm"
	"github.com/vmm-dev/vmm/vmtest"
)

// guestTimeout bounds one micro-guest run. Each does well under a million
// emulated instructions (under a second here); the margin is for a loaded
// two-core host.
const guestTimeout = 10 * time.Second

// TestHello is the README's demo: vmm boot --kernel hello.bzImage.
func TestHello(t *testing.T) {
	res := vmtest.Run(t, vmtest.Config{Kernel: guest(t, "hello")}, guestTimeout)
	if res.Code != vmm.StatusGuestOff {
		t.Errorf("exit status %d, want %d", res.Code, vmm.StatusGuestOff)
	}
	if res.Console != "hello from a vmm micro-guest\n" {
		t.Errorf("console = %q, want the greeting line alone", res.Console)
	}
}

// TestGuests_EndAsExpected runs guests that need no input to their end and
// checks the exit status and what they and vmm printed.
func TestGuests_EndAsExpected(t *testing.T) {
	tests := []struct {
		guest      string
		memory     string
		wantCode   int
		wantOut    []string // regexps the console must match
		wantStderr []string // regexps vmm's stderr must match
	}{
		{guest: "reset", wantCode: vmm.StatusGuestOff, wantOut: []string{`(?m)^reset: resetting via i8042$`}},
		{guest: "triplefault", wantCode: vmm.StatusTripleFault, wantOut: []string{`(?m)^triplefault: faulting now\n\z`},
			wantStderr: []string{`the guest's console ended with:\ntriplefault: faulting now\n`}},
		{guest: "panic", wantCode: vmm.StatusGuestPanic, wantStderr: []string{
			`vmm: guest kernel panic: Kernel panic - not syncing: VFS: Unable to mount root fs`,
			`the guest's console ended with:\npanic: about to panic\nKernel panic - not syncing: VFS`}},
		{guest: "highmem", memory: "5G", wantCode: vmm.StatusGuestOff, wantOut: []string{`(?m)^highmem ok$`}},
		{
			guest:    "unhandled",
			wantCode: vmm.StatusGuestOff,
			wantOut: []string{
				`(?m)^unhandled: pio 0x5555 = 0xff$`,
				`(?m)^unhandled: mmio 0xd0000000 = 0xffffffff$`,
				`(?m)^unhandled: done$`,
			},
			wantStderr: []string{`unhandled accesses: pio=[1-9]\d* mmio=[1-9]\d*`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.guest, func(t *testing.T) {
			cfg := vmtest.Config{Kernel: guest(t, tt.guest), Memory: tt.memory}
			res := vmtest.Run(t, cfg, guestTimeout)
			if res.Code != tt.wantCode {
				t.Errorf("exit status %d, want %d", res.Code, tt.wantCode)
			}
			matchAll(t, "console", res.Console, tt.wantOut)
			matchAll(t, "stderr", res.Stderr, tt.wantStderr)
		})
	}
}

func TestEcho(t *testing.T) {
	vm := vmtest.Start(t, vmtest.Config{Kernel: guest(t, "echo")})
	vm.Expect(`ready\n`, guestTimeout)
	vm.SendLine("hello, micro-guest 42")
	vm.Expect(`echo: hello, micro-guest 42\n`, guestTimeout)
	if code := vm.Wait(guestTimeout); code != vmm.StatusGuestOff {
		t.Errorf("exit status %d, want %d", code, vmm.StatusGuestOff)
	}
}

// TestSignals stops a guest that spins polling the UART: vmm must pull the
// vCPU out of KVM_RUN and exit with 128+signal.
// TestSignals: SIGINT stops the VM at once; SIGTERM presses the ACPI
// power button, which the echo guest ignores, so a second SIGTERM, or the
// stop timeout, stops it.
func TestSignals(t *testing.T) {
	tests := []struct {
		name string
		args []string
		sigs []syscall.Signal
		want int
	}{
		{"SIGINT", nil, []syscall.Signal{syscall.SIGINT}, vmm.StatusInterrupted},
		{"SIGTERM twice", nil, []syscall.Signal{syscall.SIGTERM, syscall.SIGTERM}, vmm.StatusTerminated},
		{"SIGTERM timeout", []string{"--stop-timeout=300ms"}, []syscall.Signal{syscall.SIGTERM}, vmm.StatusTerminated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vm := vmtest.Start(t, vmtest.Config{Kernel: guest(t, "echo"), Args: tt.args})
			vm.Expect(`ready\n`, guestTimeout)
			for _, s := range tt.sigs {
				vm.Signal(s)
				time.Sleep(50 * time.Millisecond)
			}
			if code := vm.Wait(guestTimeout); code != tt.want {
				t.Errorf("exit status after %v = %d, want %d; stderr:\n%s", tt.sigs, code, tt.want, vm.Stderr())
			}
		})
	}
}

func TestSetupError_CorruptKernel(t *testing.T) {
	vmtest.RequireKVM(t)
	kernel := writeRandom(t, "corrupt.bzImage", 8192)
	res := vmtest.Run(t, vmtest.Config{Kernel: kernel}, guestTimeout)
	if res.Code != vmm.StatusSetupError {
		t.Errorf("exit status %d, want %d", res.Code, vmm.StatusSetupError)
	}
	if !hasLine(res.Stderr, "vmm: ", "bzImage") {
		t.Errorf("stderr has no \"vmm: \" line mentioning bzImage:\n%s", res.Stderr)
	}
}

func TestSetupError_MissingInitrd(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-initrd.img")
	res := vmtest.Run(t, vmtest.Config{Kernel: guest(t, "hello"), Initrd: missing}, guestTimeout)
	if res.Code != vmm.StatusSetupError {
		t.Errorf("exit status %d, want %d", res.Code, vmm.StatusSetupError)
	}
	if !hasLine(res.Stderr, "vmm: ", missing) {
		t.Errorf("stderr has no \"vmm: \" line naming %s:\n%s", missing, res.Stderr)
	}
	if strings.Contains(res.Console, "hello") {
		t.Errorf("guest ran despite the setup error: %q", res.Console)
	}
}

func TestUsageError_NoKernel(t *testing.T) {
	err := exec.Command(vmtest.Binary(t), "boot").Run()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != vmm.StatusUsage {
		t.Errorf("vmm boot without --kernel: %v, want exit status %d", err, vmm.StatusUsage)
	}
}

// matchAll reports each pattern that s does not match.
func matchAll(t *testing.T, what, s string, patterns []string) {
	t.Helper()
	for _, p := range patterns {
		if !regexp.MustCompile(p).MatchString(s) {
			t.Errorf("%s does not match %q:\n%s", what, p, s)
		}
	}
}

// hasLine says whether some line of s starts with prefix and contains sub.
func hasLine(s, prefix, sub string) bool {
	for line := range strings.Lines(s) {
		if strings.HasPrefix(line, prefix) && strings.Contains(line, sub) {
			return true
		}
	}
	return false
}

// writeRandom writes n random bytes to a file in t.TempDir and returns its path.
func writeRandom(t *testing.T, name string, n int) string {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
