package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmm-dev/vmm/internal/companion"
	"github.com/vmm-dev/vmm/vmm"
)

// asMainEnv makes the test binary run as vmm-lab itself, so a copy of it
// placed beside a fake vmm shows how the real program finds vmm.
const asMainEnv = "VMM_LAB_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		main()
	}
	os.Exit(m.Run())
}

// fakeVMM writes a vmm that prints its arguments and exits with status.
func fakeVMM(t *testing.T, path, status string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\necho \"vmm $*\"\nexit "+status+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// oneVMLab writes a lab of one kernel VM, a, into dir.
func oneVMLab(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "lab.toml")
	if err := os.WriteFile(p, []byte("[[vm]]\nname = \"a\"\nkernel = \"k\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// installAsVMMLab copies this test binary into dir as vmm-lab.
func installAsVMMLab(t *testing.T, dir string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, companion.Lab)
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// runInstalled runs the vmm-lab in dir with VMM_EXE unset.
func runInstalled(t *testing.T, exe string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), asMainEnv+"=1", companion.VMMEnv+"=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatal(err)
		}
	}
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

func TestLab_VMMFromEnv_StatusesPassThrough(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "my-vmm")
	fakeVMM(t, fake, "3")
	t.Setenv(companion.VMMEnv, fake)
	var stdout, stderr bytes.Buffer
	code := runLab([]string{oneVMLab(t, dir)}, &stdout, &stderr)
	wantOut := "a | vmm boot --stop-timeout 5s --kernel " + filepath.Join(dir, "k") + "\n"
	if code != 1 || stdout.String() != wantOut || stderr.String() != "vmm lab: exit statuses: a 3\n" {
		t.Errorf("status %d, stdout %q, stderr %q; want 1, %q and a's status 3", code, stdout.String(), stderr.String(), wantOut)
	}
}

func TestLab_VMMBesideItself(t *testing.T) {
	dir := t.TempDir()
	fakeVMM(t, filepath.Join(dir, companion.VMM), "0")
	stdout, stderr, code := runInstalled(t, installAsVMMLab(t, dir), oneVMLab(t, t.TempDir()))
	if code != 0 || !strings.HasPrefix(stdout, "a | vmm boot ") || stderr != "vmm lab: exit statuses: a 0\n" {
		t.Errorf("status %d, stdout %q, stderr %q; want the vmm beside vmm-lab to run a", code, stdout, stderr)
	}
}

func TestLab_NoVMM_NamesTheFix(t *testing.T) {
	dir := t.TempDir()
	exe := installAsVMMLab(t, dir)
	_, stderr, code := runInstalled(t, exe, oneVMLab(t, t.TempDir()))
	want := "vmm lab: vmm is not installed beside " + exe + ": `make build` puts it in bin/ with vmm-lab, or set VMM_EXE to its path\n"
	if code != vmm.StatusSetupError || stderr != want {
		t.Errorf("status %d, stderr %q; want %d and %q", code, stderr, vmm.StatusSetupError, want)
	}
}

func TestLab_UsageErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[[vm]]\nname = \"a\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(companion.VMMEnv, "/nonexistent/vmm") // never reached
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{nil, "want one lab FILE"},
		{[]string{"a", "b"}, "want one lab FILE"},
		{[]string{"--bogus", "f"}, "unknown flag: --bogus; run `vmm help lab`"},
		{[]string{filepath.Join(dir, "missing.toml")}, "no such file"},
		{[]string{bad}, "give either kernel or image"},
	} {
		var stderr bytes.Buffer
		code := runLab(tc.args, io.Discard, &stderr)
		if code != vmm.StatusUsage || !strings.Contains(stderr.String(), tc.msg) {
			t.Errorf("vmm lab %q: status %d, stderr %q; want %d and %q", tc.args, code, stderr.String(), vmm.StatusUsage, tc.msg)
		}
	}
}
