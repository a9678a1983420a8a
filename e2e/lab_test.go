package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/vmm/lab"
	"github.com/vmm-dev/vmm/vmtest"
)

// writeLab writes a lab file into a fresh directory and returns its path.
func writeLab(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "lab.toml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// runLab runs `vmm lab FILE`, returning stdout, stderr and the status.
func runLab(t *testing.T, file string, interrupt time.Duration) (string, string, int) {
	t.Helper()
	cmd := exec.Command(vmtest.Binary(t), "lab", file)
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	if interrupt > 0 {
		time.AfterFunc(interrupt, func() { cmd.Process.Signal(syscall.SIGINT) })
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("vmm lab still running after 60 s; stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

// TestLab_FileBringsUpSegment: `vmm lab` starts three vnetlab stations on
// one network from a lab file: a pings b, b answers, c (on the same
// segment) hears nothing addressed to others. Every line carries its VM's
// name; the lab's status is 0 because every VM ended with 0.
func TestLab_FileBringsUpSegment(t *testing.T) {
	kernel := guest(t, "vnetlab")
	file := writeLab(t, fmt.Sprintf(`
[[network]]
name = "lan"

[[vm]]
name = "a"
kernel = %[1]q
cmdline = "console=ttyS0 delay=1000 send=%[2]s listen=2500"
memory = "32M"
networks = ["lan"]

[[vm]]
name = "b"
kernel = %[1]q
cmdline = "console=ttyS0 reply listen=3000"
memory = "32M"
networks = ["lan"]

[[vm]]
name = "c"
kernel = %[1]q
cmdline = "console=ttyS0 listen=3000"
memory = "32M"
networks = ["lan"]
`, kernel, lab.MAC(0, 1)))
	out, stderr, code := runLab(t, file, 0)
	if code != 0 {
		t.Fatalf("vmm lab exited %d; stdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	a, b := lab.MAC(0, 0), lab.MAC(0, 1)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^b \| vnetlab: rx \d+ bytes ` + a + ` > ` + b + ` type 88b5: `),
		regexp.MustCompile(`(?m)^a \| vnetlab: rx \d+ bytes ` + b + ` > ` + a + ` type 88b5: `),
		regexp.MustCompile(`(?m)^c \| vnetlab: timeout, 0 received$`),
		regexp.MustCompile(`(?m)^a \| vnetlab: timeout, 1 received$`),
	} {
		if !want.MatchString(out) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !regexp.MustCompile(`^[abc] \| `).MatchString(line) {
			t.Errorf("line without a VM prefix: %q", line)
		}
	}
	if !strings.Contains(stderr, "exit statuses: a 0, b 0, c 0") {
		t.Errorf("stderr lacks the statuses:\n%s", stderr)
	}
}

// TestLab_FailingVMAndInterrupt: one VM's failure makes the lab's status
// 1 and is named; SIGINT stops VMs that would run on.
func TestLab_FailingVMAndInterrupt(t *testing.T) {
	listener, crasher := guest(t, "vnetlab"), guest(t, "triplefault")
	file := writeLab(t, fmt.Sprintf(`
[[network]]
name = "lan"
[[vm]]
name = "long"
kernel = %q
memory = "32M"
networks = ["lan"]
[[vm]]
name = "crash"
kernel = %q
memory = "32M"
`, listener, crasher))
	start := time.Now()
	out, stderr, code := runLab(t, file, 1500*time.Millisecond)
	if code != 1 || !regexp.MustCompile(`exit statuses: long 1[34]\d, crash 3`).MatchString(stderr) {
		t.Fatalf("status %d; stderr:\n%s\nstdout:\n%s\nwant 1, long stopped by the signal, crash's triple fault (3)", code, stderr, out)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the lab took %v to stop after SIGINT", d)
	}
}

// TestLab_BadFile: a lab file with a mistake is refused before any VM.
func TestLab_BadFile(t *testing.T) {
	vmtest.RequireKVM(t)
	_, stderr, code := runLab(t, writeLab(t, "[[vm]]\nname = \"a\"\nkernel = \"k\"\nnetworks = [\"wan\"]\n"), 0)
	if code != 2 || !strings.Contains(stderr, `network "wan" is not defined`) {
		t.Fatalf("status %d, stderr %q", code, stderr)
	}
}

// TestLab_ParallelVMs: eight micro-guest VMs in parallel subtests, each
// its own vmm process.
func TestLab_ParallelVMs(t *testing.T) {
	kernel := guest(t, "hello")
	for i := range 8 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			vm := vmtest.Start(t, vmtest.Config{Kernel: kernel, Memory: "128M", Args: []string{"--rng=false"}})
			vm.Expect(`hello from a vmm micro-guest`, 20*time.Second)
			t.Logf("start to the first console match: %v", time.Since(start).Round(time.Microsecond))
			if code := vm.Wait(20 * time.Second); code != 0 {
				t.Fatalf("status %d", code)
			}
		})
	}
}
