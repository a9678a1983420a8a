// Package fullfs gives tests a disk image on a host filesystem with no
// room left: what a disk meets when the host's disk fills up under it.
package fullfs

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// SparseDisk mounts a tmpfs of size bytes for the test, makes in it a
// sparse file of size bytes (no blocks yet), fills the rest of the
// filesystem, and returns the file's path: writing the file's pages then
// fails with ENOSPC (or SIGBUS through a mapping). The tmpfs is unmounted
// when the test ends. Mounting needs root; without it the test is skipped.
func SparseDisk(t testing.TB, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("FULL FILESYSTEM TEST SKIPPED: mounting a small tmpfs needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.FormatInt(size, 10)); err != nil {
		t.Fatalf("mount a %d-byte tmpfs: %v", size, err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	path := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil { // sparse: no pages yet
		t.Fatal(err)
	}
	filler, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	filler.Write(make([]byte, 2*size)) // fills the tmpfs; the error is expected
	filler.Close()
	return path
}
