package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vmm-dev/vmm/boot"
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

// TestBoot_ResourceLimits: `vmm boot` with a value past one of the limits
// docs/security.md lists fails with the set-up status and a message that
// names the value and what to give instead, before any guest runs (the
// console stays empty). The count and memory limits are checked before
// /dev/kvm is opened; the kernel command line, initrd and kernel size
// while the kernel is loaded, so those rows need KVM and a bzImage.
func TestBoot_ResourceLimits(t *testing.T) {
	repeat := func(flag string, values ...string) []string {
		var args []string
		for _, v := range values {
			args = append(args, flag, v)
		}
		return args
	}
	numbered := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = prefix + strconv.Itoa(i)
		}
		return out
	}
	type row struct {
		name string
		args []string
		msg  string
	}
	rows := []row{
		{"memory below the minimum", []string{"--memory", "15M"}, "memory 15M is below the 16M minimum: give at least 16M"},
		{"memory not in whole pages", []string{"--memory", "100000001"}, "memory 100000001 is not a whole number of 4K pages: give a multiple of 4K, such as 96M"},
		{"memory above host RAM", []string{"--memory", "100T"}, "is more than this host's"},
		{"no CPUs", []string{"--cpus", "0"}, "0 CPUs; give 1 to 254"},
		{"too many CPUs", []string{"--cpus", "255"}, "255 CPUs; give 1 to 254"},
		{"too many disks", repeat("--disk", numbered("d", vmm.MaxDisks+1)...), "17 disks; give at most 16"},
		{"too many NICs", repeat("--net", numbered("socket=/nonexistent/sw", vmm.MaxNICs+1)...), "9 network devices; give at most 8"},
		{"too many console ports", repeat("--port", numbered("p", vmm.MaxPorts+1)...), "32 console ports; give at most 31"},
	}
	kernel := "/nonexistent/bzImage" // never opened: the limits are checked first
	if _, err := os.Stat("/dev/kvm"); err == nil {
		dir := t.TempDir()
		kernel = writeResetKernel(t, dir, "bzImage", boot.BzImageOptions{})
		big := writeResetKernel(t, dir, "big.bzImage", boot.BzImageOptions{InitSize: 64 << 20})
		initrd := filepath.Join(dir, "initrd")
		if err := os.WriteFile(initrd, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(initrd, 32<<20); err != nil { // sparse
			t.Fatal(err)
		}
		rows = append(rows,
			row{"command line too long", []string{"--cmdline", strings.Repeat("a", 3000)}, "bytes, the limit is 2048: shorten it"},
			row{"initrd larger than memory", []string{"--memory", "16M", "--initrd", initrd},
				"initrd is 33554432 bytes but only"},
			row{"kernel larger than memory", []string{"--memory", "16M", "--kernel", big}, "give the VM at least 65 MiB"},
		)
	} else {
		t.Logf("/dev/kvm not available (%v): the command-line, initrd and kernel size rows are skipped", err)
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"boot", "--kernel", kernel, "--rng=false"}, tc.args...)
			code, stdout, stderr := run(args...)
			if code != vmm.StatusSetupError || !strings.Contains(stderr, tc.msg) || stdout != "" {
				t.Errorf("status %d, stdout %q, stderr %q; want %d, no console output and %q",
					code, stdout, stderr, vmm.StatusSetupError, tc.msg)
			}
		})
	}
}

// writeResetKernel writes a bzImage whose payload resets the machine at
// once through the i8042, so a row that wrongly passed its limit ends
// (and fails) instead of running forever.
func writeResetKernel(t *testing.T, dir, name string, opts boot.BzImageOptions) string {
	t.Helper()
	payload := make([]byte, 0x200, 0x210)
	payload = append(payload, 0xb0, 0xfe, 0xe6, 0x64, 0xf4) // mov al, 0xfe; out 0x64, al; hlt
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, boot.BuildBzImage(payload, opts), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
