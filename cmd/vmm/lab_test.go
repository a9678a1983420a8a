package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/internal/companion"
	"github.com/vmm-dev/vmm/vmm"
	"github.com/vmm-dev/vmm/vmm/lab/labhelp"
)

// fakeVMMLab writes a vmm-lab shell script and points $VMM_LAB at it.
func fakeVMMLab(t *testing.T, script string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fake-vmm-lab")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(companion.LabEnv, p)
}

func TestLab_NoVMMLab_NamesTheFix(t *testing.T) {
	t.Setenv(companion.LabEnv, "")
	code, stdout, stderr := run("lab", "lab.toml")
	if code != vmm.StatusSetupError || stdout != "" ||
		!strings.HasPrefix(stderr, "vmm lab: vmm-lab is not installed beside ") ||
		!strings.Contains(stderr, "`make build` puts it in bin/") || !strings.Contains(stderr, "set VMM_LAB to its path") {
		t.Errorf("status %d, stdout %q, stderr %q; want %d and how to install vmm-lab", code, stdout, stderr, vmm.StatusSetupError)
	}
}

// vmm lab passes its arguments and stdio to vmm-lab, tells it which vmm
// to start VMs with, and returns its status.
func TestLab_RunsVMMLab_StatusPassesThrough(t *testing.T) {
	fakeVMMLab(t, "echo \"args $*\"\necho \"exe $VMM_EXE\"\necho oops >&2\nexit 7\n")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run("lab", "--x", "lab.toml")
	if want := "args --x lab.toml\nexe " + self + "\n"; code != 7 || stdout != want || stderr != "oops\n" {
		t.Errorf("status %d, stdout %q, stderr %q; want 7, %q and oops", code, stdout, stderr, want)
	}
}

func TestLab_VMMLabKilled_128PlusSignal(t *testing.T) {
	fakeVMMLab(t, "kill -KILL $$\n")
	if code, _, stderr := run("lab", "lab.toml"); code != 128+int(syscall.SIGKILL) {
		t.Errorf("status %d, stderr %q; want %d", code, stderr, 128+int(syscall.SIGKILL))
	}
}

// A SIGINT or SIGTERM sent to vmm alone (not its process group) reaches
// vmm-lab, which then stops the lab. The test sends it to its own
// process, where vmm lab runs.
func TestLab_ForwardsSignalsToVMMLab(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			ready := filepath.Join(t.TempDir(), "ready")
			fakeVMMLab(t, "trap 'echo got signal; exit 42' INT TERM\ntouch "+ready+"\nwhile :; do sleep 0.05; done\n")
			type result struct {
				code           int
				stdout, stderr string
			}
			done := make(chan result, 1)
			go func() {
				code, stdout, stderr := run("lab", "lab.toml")
				done <- result{code, stdout, stderr}
			}()
			deadline := time.Now().Add(10 * time.Second)
			for _, err := os.Stat(ready); err != nil; _, err = os.Stat(ready) {
				if time.Now().After(deadline) {
					t.Fatal("the fake vmm-lab did not start")
				}
				time.Sleep(10 * time.Millisecond)
			}
			// vmm lab is waiting for vmm-lab, so the signal is vmm's to catch.
			syscall.Kill(os.Getpid(), sig)
			select {
			case r := <-done:
				if r.code != 42 || r.stdout != "got signal\n" {
					t.Errorf("status %d, stdout %q, stderr %q; want vmm-lab's 42 after the signal", r.code, r.stdout, r.stderr)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("vmm lab did not end after the signal")
			}
		})
	}
}

// vmm, which every VM runs, links neither the lab nor its TOML parser:
// vmm-lab has them.
func TestDeps_NoLabInVMM(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Skipf("SKIP: go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "github.com/vmm-dev/vmm/vmm/lab" || strings.HasPrefix(dep, "github.com/BurntSushi/toml") {
			t.Errorf("cmd/vmm depends on %s; the lab belongs in cmd/vmm-lab", dep)
		}
	}
}

func TestHelpLab_IsLabhelpText(t *testing.T) {
	if code, stdout, _ := run("help", "lab"); code != 0 || stdout != labhelp.Text || !strings.HasPrefix(stdout, "Usage: vmm lab FILE\n") {
		t.Errorf("help lab: %d %q", code, stdout)
	}
}
