package blk_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/vmm-dev/vmm/virtio/blk"
)

// The image file changing under a running device: the host faults
// e2e/hostfault_test.go shows end to end, here against a test guest memory.

// TestFile_TruncatedUnderTheDevice_ReadsPastTheEndAreIOErr: the image
// shrinks to 16 sectors and 100 bytes after the device read its capacity
// (64 sectors). Reads before the new end return the file's bytes; a read
// that reaches past it, in one buffer or several (preadv), fails with
// IOERR, its buffers zeroed rather than holding the part of it that was
// still there, and OnError hears io.EOF; the device goes on.
func TestFile_TruncatedUnderTheDevice_ReadsPastTheEndAreIOErr(t *testing.T) {
	const sectors = 64
	content := pattern(sectors*blk.SectorSize, 3)
	path := tempDisk(t, content)
	var reported []error
	opts := blk.Options{Workers: 1, OnError: func(_ uint16, err error) { reported = append(reported, err) }}
	r := newRig(t, openDisk(t, path, false), opts, blk.FeatureFlush)
	if err := os.Truncate(path, 16*blk.SectorSize+100); err != nil {
		t.Fatal(err)
	}
	const ss = blk.SectorSize
	for _, tc := range []struct {
		name     string
		sector   uint64
		writable []int // data buffers
		status   byte
		data     []byte
	}{
		{"before the new end", 15, []int{ss}, blk.StatusOK, content[15*ss : 16*ss]},
		{"straddling the new end", 16, []int{ss}, blk.StatusIOErr, make([]byte, ss)},
		{"past the new end", 40, []int{ss}, blk.StatusIOErr, make([]byte, ss)},
		{"last sector of the capacity", sectors - 1, []int{ss}, blk.StatusIOErr, make([]byte, ss)},
		{"several buffers across the new end", 14, []int{ss, 100, 3*ss - 100}, blk.StatusIOErr, make([]byte, 4*ss)},
		{"several buffers before it", 12, []int{ss, 100, 3*ss - 100}, blk.StatusOK, content[12*ss : 16*ss]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reported = nil
			head := r.drv.AddChain([][]byte{header(blk.TypeIn, tc.sector)}, append(tc.writable, 1))
			r.notify()
			r.used(1)
			data, status := r.result(head)
			if status != tc.status || !bytes.Equal(data, tc.data) {
				t.Errorf("status %d, data equal %v; want status %d and the data", status, bytes.Equal(data, tc.data), tc.status)
			}
			if wantErr := tc.status != blk.StatusOK; wantErr != (len(reported) == 1 && errors.Is(reported[0], io.EOF)) {
				t.Errorf("OnError heard %v", reported)
			}
		})
	}
	// A write inside the capacity extends the file again, as pwrite does.
	want := pattern(blk.SectorSize, 77)
	if _, status, _ := r.run(blk.TypeOut, 40, want, 0); status != blk.StatusOK {
		t.Fatalf("write past the new end: status %d", status)
	}
	if data, status, _ := r.run(blk.TypeIn, 40, nil, blk.SectorSize); status != blk.StatusOK || !bytes.Equal(data, want) {
		t.Errorf("read back: status %d, data equal %v", status, bytes.Equal(data, want))
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != 41*blk.SectorSize {
		t.Errorf("file after the write: %v, %v; want %d bytes", fi, err, 41*blk.SectorSize)
	}
}

// TestFile_UnlinkedUnderTheDevice_KeepsWorking: the image's name is
// removed while the device runs; the open descriptor keeps the file, so
// reads, writes and flushes go on as before.
func TestFile_UnlinkedUnderTheDevice_KeepsWorking(t *testing.T) {
	content := pattern(64*blk.SectorSize, 5)
	path := tempDisk(t, content)
	r := newRig(t, openDisk(t, path, false), blk.Options{}, blk.FeatureFlush)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if data, status, _ := r.run(blk.TypeIn, 3, nil, 2*blk.SectorSize); status != blk.StatusOK || !bytes.Equal(data, content[3*blk.SectorSize:5*blk.SectorSize]) {
		t.Errorf("read: status %d", status)
	}
	want := pattern(blk.SectorSize, 9)
	if _, status, _ := r.run(blk.TypeOut, 7, want, 0); status != blk.StatusOK {
		t.Errorf("write: status %d", status)
	}
	if _, status, _ := r.run(blk.TypeFlush, 0, nil, 0); status != blk.StatusOK {
		t.Errorf("flush: status %d", status)
	}
	if data, status, _ := r.run(blk.TypeIn, 7, nil, blk.SectorSize); status != blk.StatusOK || !bytes.Equal(data, want) {
		t.Errorf("read back: status %d", status)
	}
}
