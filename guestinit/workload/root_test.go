package workload

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestInRoot_Confined(t *testing.T) {
	root := testImageRoot(t)
	for _, tt := range []struct{ name, want string }{
		{"/", "/"},
		{"/../../..", "/"},
		{"/bin/sh", "/bin/busybox"},
		{"/usr/bin/escape", "/bin/busybox"},
		{"/usr/bin/hostsh", "/bin/busybox"},
		{"/sbin/python3", "/usr/lib/real-python"},
		{"/new/dir/../x", "/new/x"},
		{"/usr/bin/dangle/sub", "/nowhere/sub"},
		{"/new/../../../../etc", "/etc"},
		{"relative/path", "/relative/path"},
	} {
		got, err := inRoot(root, tt.name)
		if want := filepath.Join(root, tt.want); err != nil || got != want {
			t.Errorf("inRoot(%q) = %q, %v; want %q", tt.name, got, err, want)
		}
	}
	if _, err := inRoot(root, "/usr/bin/loop"); !errors.Is(err, errLoop) {
		t.Errorf("inRoot(loop) = %v, want errLoop", err)
	}
}

func TestMakeWorkdir(t *testing.T) {
	root := testImageRoot(t)
	if err := makeWorkdir(root, "/work/a/b"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(root, "work/a/b")); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
		t.Errorf("working directory: %v, %v; want a 0755 directory", fi, err)
	}
	// Through a symlink out of the root: created inside it.
	if err := makeWorkdir(root, "/usr/bin/dangle"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "nowhere")); err != nil {
		t.Errorf("dangling link's target not created inside the root: %v", err)
	}
	if err := makeWorkdir(root, "/bin/busybox"); err == nil {
		t.Error("makeWorkdir(a file) succeeded")
	}
}

func TestRootFS_AbsoluteLinksStayInside(t *testing.T) {
	root := t.TempDir()
	for name, data := range map[string]string{
		"usr/share/base/passwd": "root:x:0:0:root:/root:/bin/sh\nimg:x:7:7::/img:/bin/sh\n",
		"etc/motd":              "hello\n",
	} {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Absolute, as an image means it: on the host it would be the host's.
	if err := os.Symlink("/usr/share/base/passwd", filepath.Join(root, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	u, err := LookupUser(RootFS(root), "img")
	if err != nil || u.UID != 7 || u.Home != "/img" {
		t.Errorf("LookupUser(img) through an absolute link = %+v, %v; want the image's entry", u, err)
	}
	if b, err := fs.ReadFile(RootFS(root), "etc/motd"); err != nil || string(b) != "hello\n" {
		t.Errorf("ReadFile(etc/motd) = %q, %v", b, err)
	}
	if _, err := fs.ReadFile(RootFS(root), "../etc/motd"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("ReadFile(../etc/motd) = %v, want fs.ErrInvalid", err)
	}
}
