package workload

import (
	"debug/elf"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// libDirs are where the dynamic loader finds this binary's libraries.
var libDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}

// selfRootfs builds a root filesystem holding this test binary as
// /bin/workload, with its dynamic loader and libraries, so it can run
// chrooted there. It returns the root and the library path to run with.
func selfRootfs(t *testing.T) (root, libPath string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	root = t.TempDir()
	copyFile(t, exe, filepath.Join(root, "bin/workload"))
	f, err := elf.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			interp, _ := io.ReadAll(p.Open())
			name := strings.TrimRight(string(interp), "\x00")
			copyFile(t, name, filepath.Join(root, name))
		}
	}
	var dirs []string
	for _, lib := range libs {
		found := false
		for _, dir := range libDirs {
			if _, err := os.Stat(filepath.Join(dir, lib)); err == nil {
				copyFile(t, filepath.Join(dir, lib), filepath.Join(root, dir, lib))
				dirs, found = append(dirs, dir), true
				break
			}
		}
		if !found {
			t.Skipf("library %s of the test binary not found in %v", lib, libDirs)
		}
	}
	return root, strings.Join(dirs, ":")
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o755); err != nil {
		t.Fatal(err)
	}
}

// With Options.Chroot the workload runs inside the image: argv[0] is found
// in the image's PATH and the working directory is created there.
func TestSupervise_Chroot(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		t.Skip("chroot needs root")
	}
	root, libPath := selfRootfs(t)
	spec := Spec{
		Argv: []string{"workload", "describe"},
		Env:  []string{roleEnv + "=workload", "PATH=/usr/bin:/bin", "LD_LIBRARY_PATH=" + libPath},
		Dir:  "/work/dir",
	}
	r, out := supervise(t, spec, Options{Chroot: root}, false)
	if r.Status != 0 || r.Err != "" {
		t.Fatalf("Supervise = %d, %q", r.Status, r.Err)
	}
	var d description
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("workload output %q: %v", out, err)
	}
	if d.Dir != "/work/dir" || d.Argv[0] != "workload" {
		t.Errorf("inside the chroot: dir %q argv %q; want /work/dir and workload", d.Dir, d.Argv)
	}
	if fi, err := os.Stat(filepath.Join(root, "work/dir")); err != nil || !fi.IsDir() {
		t.Errorf("working directory not created inside the image: %v", err)
	}
}
