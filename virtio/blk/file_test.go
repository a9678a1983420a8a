package blk_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/vmm-dev/vmm/virtio/blk"
)

func TestNewFileBackend_Refuses(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name string
		path string
		err  error
	}{
		{"missing", filepath.Join(dir, "nope.img"), fs.ErrNotExist},
		{"directory", dir, blk.ErrNotRegular},
		{"empty", tempDisk(t, nil), blk.ErrEmptyDisk},
		{"511 bytes", tempDisk(t, make([]byte, 511)), blk.ErrEmptyDisk},
		{"device node", os.DevNull, blk.ErrNotRegular},
	} {
		_, err := blk.NewFileBackend(tt.path, true)
		if !errors.Is(err, tt.err) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.err)
		}
	}
}

func TestNewFileBackend_ErrorNamesThePath(t *testing.T) {
	path := tempDisk(t, nil)
	_, err := blk.NewFileBackend(path, false)
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte(path)) {
		t.Errorf("error %q does not name %s", err, path)
	}
}

func TestFile_CapacityRoundsDown(t *testing.T) {
	f := openDisk(t, tempDisk(t, make([]byte, 3*blk.SectorSize+100)), false)
	if f.Sectors() != 3 {
		t.Errorf("Sectors = %d, want 3", f.Sectors())
	}
}

func TestFile_IDStableAndDistinct(t *testing.T) {
	path := tempDisk(t, make([]byte, 4096))
	a, b := openDisk(t, path, false).ID(), openDisk(t, path, true).ID()
	if a != b {
		t.Errorf("same file, different IDs: %q, %q", a, b)
	}
	other := openDisk(t, tempDisk(t, make([]byte, 4096)), false).ID()
	if a == other {
		t.Errorf("two files share the ID %q", a)
	}
	s := bytes.TrimRight(a[:], "\x00")
	if len(s) == 0 || bytes.IndexByte(s, 0) >= 0 {
		t.Errorf("ID %q is not a NUL-padded string", a)
	}
}

func TestFile_ReadOnlyRefusesWriteAt(t *testing.T) {
	content := pattern(4096, 2)
	path := tempDisk(t, content)
	f := openDisk(t, path, true)
	if !f.ReadOnly() {
		t.Error("ReadOnly = false")
	}
	if _, err := f.WriteAt([]byte{1}, 0); !errors.Is(err, syscall.EROFS) {
		t.Errorf("WriteAt = %v, want EROFS", err)
	}
	if !bytes.Equal(readFile(t, path), content) {
		t.Error("file changed")
	}
}

func TestFile_ReadWriteFlush(t *testing.T) {
	path := tempDisk(t, make([]byte, 4096))
	f := openDisk(t, path, false)
	if _, err := f.WriteAt([]byte("hello"), 1000); err != nil {
		t.Fatal(err)
	}
	if err := f.Flush(); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 5)
	if _, err := f.ReadAt(got, 1000); err != nil || string(got) != "hello" {
		t.Errorf("ReadAt = %q, %v", got, err)
	}
	if _, err := f.ReadAt(got, 4094); err == nil {
		t.Error("ReadAt past the end of the file succeeded")
	}
}
