package workload

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// imageRoot builds a small image tree: files with their modes, symlinks
// with their targets (absolute ones meant inside the image).
func imageRoot(t *testing.T, files map[string]os.FileMode, links map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, mode := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if mode.IsDir() {
			if err := os.Mkdir(p, mode.Perm()); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range links {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func testImageRoot(t *testing.T) string {
	return imageRoot(t,
		map[string]os.FileMode{
			"bin/busybox":         0o755,
			"usr/bin/tool":        0o644, // not executable: skipped
			"usr/local/bin/tool":  0o755,
			"usr/bin/dir":         os.ModeDir | 0o755,
			"opt/app/bin/run":     0o700,
			"srv/scripts/go.sh":   0o755,
			"usr/lib/real-python": 0o755,
		},
		map[string]string{
			"bin/sh":          "/bin/busybox",             // absolute, as alpine's
			"usr/bin/python3": "../lib/real-python",       // relative
			"usr/bin/escape":  "../../../../../../bin/sh", // climbs past the root: stays inside
			"usr/bin/hostsh":  "/../../../../bin/busybox", // the same, absolute
			"usr/bin/loop":    "loop",                     // ELOOP
			"usr/bin/dangle":  "/nowhere",                 // dangling
			"sbin":            "usr/bin",                  // a linked directory
		})
}

func TestLookPath_InsideRoot(t *testing.T) {
	root := testImageRoot(t)
	for _, tt := range []struct{ dir, file, path, want string }{
		{"/", "sh", "/usr/bin:/bin", "/bin/sh"},
		{"/", "busybox", "/bin", "/bin/busybox"},
		{"/", "tool", "/usr/bin:/usr/local/bin", "/usr/local/bin/tool"},
		{"/", "python3", "/sbin", "/sbin/python3"},
		{"/", "escape", "/usr/bin", "/usr/bin/escape"},
		{"/", "hostsh", "/usr/bin", "/usr/bin/hostsh"},
		{"/", "run", "/opt/app/bin", "/opt/app/bin/run"},
		// Relative and empty entries are relative to the working directory.
		{"/srv", "go.sh", "scripts", "/srv/scripts/go.sh"},
		{"/srv/scripts", "go.sh", "/bin::", "/srv/scripts/go.sh"},
		// A name with a slash is not searched.
		{"/", "./x", "/bin", "./x"},
		{"/", "/does/not/exist", "/bin", "/does/not/exist"},
	} {
		got, err := LookPath(root, tt.dir, tt.file, tt.path)
		if err != nil || got != tt.want {
			t.Errorf("LookPath(%q in %s, PATH=%q) = %q, %v; want %q", tt.file, tt.dir, tt.path, got, err, tt.want)
		}
	}
}

func TestLookPath_NotFound(t *testing.T) {
	root := testImageRoot(t)
	for _, tt := range []struct{ file, path string }{
		{"nope", "/bin:/usr/bin"},
		{"tool", "/usr/bin"}, // not executable
		{"dir", "/usr/bin"},  // a directory
		{"loop", "/usr/bin"}, // a symlink loop
		{"dangle", "/usr/bin"},
		{"sh", ""}, // no PATH at all
		{"", "/bin"},
		{"true", "/bin"}, // on the host, not in the image
	} {
		_, err := LookPath(root, "/", tt.file, tt.path)
		var ee *exec.Error
		if !errors.As(err, &ee) || !errors.Is(err, exec.ErrNotFound) {
			t.Errorf("LookPath(%q, PATH=%q) = %v, want exec.ErrNotFound", tt.file, tt.path, err)
		}
	}
	_, err := LookPath(root, "/", "nope", "/bin")
	if want := `exec: "nope": executable file not found in $PATH`; err == nil || err.Error() != want {
		t.Errorf("error = %v, want docker's %q", err, want)
	}
}
