package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmm-dev/vmm/vmm"
)

func run(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := dispatch(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestDispatch_UsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{nil, vmm.StatusUsage, "Usage"},
		{[]string{"frobnicate"}, vmm.StatusUsage, `unknown command "frobnicate"`},
		{[]string{"boot"}, vmm.StatusUsage, "--kernel is required"},
		{[]string{"boot", "--kernel", "k", "--memory", "lots"}, vmm.StatusUsage, "--memory"},
		{[]string{"boot", "--bogus"}, vmm.StatusUsage, "unknown flag"},
		{[]string{"boot", "--kernel", "k", "extra"}, vmm.StatusUsage, `unexpected argument "extra"`},
		{[]string{"boot", "--kernel", "k", "--memory", "100T"}, vmm.StatusSetupError, "more than this host's"},
		{[]string{"boot", "--kernel", "/nonexistent/bzImage"}, vmm.StatusSetupError, "kernel /nonexistent/bzImage does not exist"},
		{[]string{"boot", "--kernel", "k", "--disk", ",ro"}, vmm.StatusUsage, "names no file"},
		{[]string{"boot", "--kernel", "k", "--disk", "d.img,rw"}, vmm.StatusUsage, `unknown option "rw"`},
	} {
		code, _, stderr := run(tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.msg) {
			t.Errorf("vmm %q: status %d, stderr %q; want %d and %q", tc.args, code, stderr, tc.code, tc.msg)
		}
	}
}

func TestBoot_NotABzImage_SaysSo(t *testing.T) {
	if _, err := os.Stat("/dev/kvm"); err != nil {
		t.Skipf("SKIP: /dev/kvm not available (%v)", err)
	}
	k := filepath.Join(t.TempDir(), "kernel")
	os.WriteFile(k, bytes.Repeat([]byte{0x5a}, 4096), 0o644)
	code, _, stderr := run("boot", "--kernel", k)
	if code != vmm.StatusSetupError || !strings.Contains(stderr, "bzImage") {
		t.Fatalf("status %d, stderr %q", code, stderr)
	}
}

func TestHelpAndVersion(t *testing.T) {
	if code, out, _ := run("version"); code != 0 || !strings.HasPrefix(out, "vmm ") {
		t.Errorf("version: %d %q", code, out)
	}
	if code, out, _ := run("help", "boot"); code != 0 || !strings.Contains(out, "--kernel") || !strings.Contains(out, "Ctrl-A") {
		t.Errorf("help boot: %d %q", code, out)
	}
	if code, out, _ := run("help"); code != 0 || !strings.Contains(out, "doctor") {
		t.Errorf("help: %d %q", code, out)
	}
}
