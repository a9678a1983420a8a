package blk

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/internal/fullfs"
)

// countingFile is a File on a real file of data whose system calls are
// the real ones, counted.
func countingFile(t *testing.T, data []byte) (*File, *atomic.Int32, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := NewFileBackend(path, false)
	if err != nil {
		t.Fatal(err)
	}
	if b.mapped == nil {
		t.Fatal("the disk file was not mapped")
	}
	var calls atomic.Int32
	b.sys = func(fd int, p []byte, bufs [][]byte, off int64, write bool, flags int) (int, error) {
		calls.Add(1)
		return hostIO(fd, p, bufs, off, write, flags)
	}
	t.Cleanup(func() { b.Close() })
	return b, &calls, path
}

// TestFileMap_CachedReadsAreCopies: a try of whole pages a system call
// moved copies them from the mapping, with no system call, and the copy
// holds the file's bytes. A try of a page never moved, or moved only in
// part, makes the call. (No try here starts where the last one ended, so
// none asks mincore.)
func TestFileMap_CachedReadsAreCopies(t *testing.T) {
	data := seq(64 << 10)
	b, calls, _ := countingFile(t, data)
	got := make([]byte, 8192)
	bufs := [][]byte{got[:1000], got[1000:]}
	steps := []struct {
		name  string
		bufs  [][]byte
		off   int64
		calls int32 // after the try
	}{
		{"pages 2-3, first", bufs, 2 << pageShift, 1},
		{"pages 2-3 again", bufs, 2 << pageShift, 1},
		{"page 3 alone", [][]byte{got[:4096]}, 3 << pageShift, 1},
		{"page 10, never moved", [][]byte{got[:4096]}, 10 << pageShift, 2},
		{"bytes 100-6099, pages 0 and 1 in part", [][]byte{got[:6000]}, 100, 3},
		{"the same bytes again", [][]byte{got[:6000]}, 100, 4},
	}
	for _, st := range steps {
		clear(got)
		if !b.TryReadvAt(st.bufs, st.off) {
			t.Fatalf("%s: try failed", st.name)
		}
		if calls.Load() != st.calls {
			t.Errorf("%s: %d system calls so far, want %d", st.name, calls.Load(), st.calls)
		}
		if n := total(st.bufs); !bytes.Equal(got[:n], data[st.off:][:n]) {
			t.Errorf("%s: the bytes read differ from the file's", st.name)
		}
	}
}

// TestFileMap_SequentialReadsLearnAhead: reads that each start where the
// last ended learn which pages ahead are cached, with mincore, and are
// copies from the first on; a page only partly inside the file is never
// learnt so, and its read is a system call.
func TestFileMap_SequentialReadsLearnAhead(t *testing.T) {
	data := seq(1 << 20)
	b, calls, path := countingFile(t, data)
	got := make([]byte, 4096)
	for off := int64(0); off < 1<<20; off += 4096 {
		if !b.TryReadvAt([][]byte{got}, off) || !bytes.Equal(got, data[off:][:4096]) {
			t.Fatalf("sequential try at %d failed or read other bytes", off)
		}
	}
	if calls.Load() != 0 {
		t.Errorf("256 sequential tries of cached pages made %d system calls, want 0", calls.Load())
	}
	if err := os.Truncate(path, 2<<pageShift+100); err != nil {
		t.Fatal(err)
	}
	// Page 0 is read with a call (a try from 0 after one that ended at
	// 1 MiB is no sequel); page 1 is learnt ahead from there.
	b.resident.forget()
	b.TryReadvAt([][]byte{got}, 0)
	b.TryReadvAt([][]byte{got}, 4096)
	if calls.Load() != 1 {
		t.Errorf("pages 0-1 of the cut file: %d system calls, want 1", calls.Load())
	}
	if b.TryReadvAt([][]byte{got}, 2<<pageShift) {
		t.Error("a try of the page the file now ends in, past its end, succeeded")
	}
	if calls.Load() != 2 {
		t.Errorf("the page the file ends in: %d system calls, want 2 (not learnt)", calls.Load())
	}
}

// TestFileMap_SeesWrites: a write through the File, then a read of the
// same pages from the mapping, returns what was written; the blocking
// calls teach the File as tries do.
func TestFileMap_SeesWrites(t *testing.T) {
	data := seq(16 << 10)
	b, calls, _ := countingFile(t, data)
	if _, err := b.ReadAt(make([]byte, 16<<10), 0); err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte{0xa5}, 3000)
	if _, err := b.WritevAt([][]byte{want}, 5000); err != nil {
		t.Fatal(err)
	}
	before := calls.Load()
	got := make([]byte, 3000)
	if !b.TryReadvAt([][]byte{got}, 5000) || calls.Load() != before {
		t.Fatalf("try after a blocking read and write: %d more system calls, want 0", calls.Load()-before)
	}
	if !bytes.Equal(got, want) {
		t.Error("the mapping does not show the write")
	}
}

// TestFileMap_ForgetMeansAsking: once forgotten, cached pages are asked
// for with a system call again.
func TestFileMap_ForgetMeansAsking(t *testing.T) {
	b, calls, _ := countingFile(t, seq(8192))
	p := [][]byte{make([]byte, 4096)}
	b.TryReadvAt(p, 4096)
	b.resident.forget()
	if !b.TryReadvAt(p, 4096) || calls.Load() != 2 {
		t.Errorf("%d system calls after a forget, want 2", calls.Load())
	}
}

// TestFileMap_FileCutShort: pages known cached and then cut off the file
// under the mapping fault in the copy; the try fails instead of the
// process, and the read after it reports the end of the file.
func TestFileMap_FileCutShort(t *testing.T) {
	b, _, path := countingFile(t, seq(64<<10))
	p := [][]byte{make([]byte, 8192)}
	if !b.TryReadvAt(p, 32<<10) || !b.TryReadvAt(p, 32<<10) {
		t.Fatal("tries of cached pages failed")
	}
	if err := os.Truncate(path, 16<<10); err != nil {
		t.Fatal(err)
	}
	if b.TryReadvAt(p, 32<<10) {
		t.Fatal("a try of pages past the file's new end succeeded")
	}
	if _, err := b.ReadvAt(p, 32<<10); !errors.Is(err, io.EOF) {
		t.Errorf("ReadvAt past the new end: %v, want io.EOF", err)
	}
	if !b.TryReadvAt([][]byte{make([]byte, 4096)}, 4096) {
		t.Error("a try inside what is left of the file failed")
	}
}

// TestFileMap_Closed: after Close a try fails, with the mapping gone.
func TestFileMap_Closed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(path, seq(8192), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := NewFileBackend(path, true)
	if err != nil {
		t.Fatal(err)
	}
	p := [][]byte{make([]byte, 4096)}
	b.TryReadvAt(p, 0)
	b.Close()
	if b.TryReadvAt(p, 0) || b.mapped != nil {
		t.Errorf("try after Close succeeded, or the mapping is still there")
	}
}

// TestFileMap_CachedWritesAreCopies: a write of pages known cached is a
// copy into the mapping, with no system call; the file holds it at once,
// for the file's other readers, and a flush goes through.
func TestFileMap_CachedWritesAreCopies(t *testing.T) {
	data := seq(64 << 10)
	b, calls, path := countingFile(t, data)
	if _, err := b.ReadAt(make([]byte, len(data)), 0); err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte{0x5a}, 8192+300)
	if n, err := b.WritevAt([][]byte{want[:100], want[100:]}, 4096); n != len(want) || err != nil {
		t.Fatalf("WritevAt = %d, %v", n, err)
	}
	if !b.TryWritevAt([][]byte{want[:4096]}, 32<<10) {
		t.Fatal("a try of a write to cached pages failed")
	}
	if calls.Load() != 0 {
		t.Errorf("%d system calls, want 0 (the first read, from 0, learnt the file ahead)", calls.Load())
	}
	copy(data[4096:], want)
	copy(data[32<<10:], want[:4096])
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, data) {
		t.Errorf("the file does not hold the writes: %v", err)
	}
	if err := b.Flush(); err != nil {
		t.Error(err)
	}
}

// TestFileMap_WritesPastACutEndExtendTheFile: a write to pages known
// cached, past the end of a file cut short under the mapping, is a
// pwrite, which extends the file, not a copy into the part of its last
// page past the end, which would be lost.
func TestFileMap_WritesPastACutEndExtendTheFile(t *testing.T) {
	b, calls, path := countingFile(t, seq(64<<10))
	if _, err := b.ReadAt(make([]byte, 64<<10), 0); err != nil {
		t.Fatal(err)
	}
	const cut = 2<<pageShift + 100
	if err := os.Truncate(path, cut); err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte{0xc3}, 512)
	for _, off := range []int64{cut + 100, 5 << pageShift} {
		before := calls.Load()
		if _, err := b.WriteAt(want, off); err != nil {
			t.Fatalf("write at %d: %v", off, err)
		}
		if calls.Load() != before+1 {
			t.Errorf("write at %d past the new end: %d system calls, want 1", off, calls.Load()-before)
		}
		got, err := os.ReadFile(path)
		if err != nil || int64(len(got)) != off+512 || !bytes.Equal(got[off:], want) {
			t.Errorf("write at %d: the file is %d bytes (want %d), or lacks the write: %v", off, len(got), off+512, err)
		}
	}
}

// TestFileMap_SequentialWritesLearnAhead: writes that each start where the
// last ended learn the cached pages ahead, as reads do, and are copies
// that reach the file.
func TestFileMap_SequentialWritesLearnAhead(t *testing.T) {
	b, calls, path := countingFile(t, seq(1<<20))
	want := bytes.Repeat([]byte{0x3c}, 1<<20)
	for off := int64(0); off < 1<<20; off += 4096 {
		if _, err := b.WriteAt(want[off:][:4096], off); err != nil {
			t.Fatal(err)
		}
	}
	if calls.Load() != 0 {
		t.Errorf("256 sequential writes of cached pages made %d system calls, want 0", calls.Load())
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, want) {
		t.Errorf("the file does not hold the writes: %v", err)
	}
}

// TestFileMap_WriteFaultOnAFullFilesystem: a write copied into cached
// pages of a sparse file on a full filesystem faults (SIGBUS: no block
// for the page); the copy gives up, and the pwrite after it reports
// ENOSPC, instead of the process dying.
func TestFileMap_WriteFaultOnAFullFilesystem(t *testing.T) {
	path := fullfs.SparseDisk(t, 64<<10)
	b, err := NewFileBackend(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.ReadAt(make([]byte, 64<<10), 0); err != nil {
		t.Fatal(err)
	}
	if !b.cached(8192, 4096) {
		t.Fatal("the pages read are not known cached: the write would not be a copy")
	}
	if _, err := b.WriteAt(bytes.Repeat([]byte{1}, 4096), 8192); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("write on the full filesystem: %v, want ENOSPC", err)
	}
}

// TestFileMap_RemapAfterCopies: once remapAfter bytes were copied, the
// timer's forget replaces the mapping with a fresh one, and copies go on
// from it with the file's bytes; while a transfer holds the File, the
// remap waits for a later forget instead of making it wait.
func TestFileMap_RemapAfterCopies(t *testing.T) {
	data := seq(64 << 10)
	b, _, _ := countingFile(t, data)
	b.remapAfter = 32 << 10
	got := make([]byte, 16<<10)
	read := func() {
		t.Helper()
		for off := int64(0); off < 64<<10; off += 16 << 10 {
			clear(got)
			if !b.TryReadvAt([][]byte{got}, off) || !bytes.Equal(got, data[off:][:16<<10]) {
				t.Fatalf("try at %d failed or read other bytes", off)
			}
		}
	}
	read()
	first := &b.mapped[0]
	b.mu.RLock() // a transfer in flight
	b.resident.timedForget()
	b.mu.RUnlock()
	if &b.mapped[0] != first {
		t.Fatal("the mapping was replaced while a transfer held the File")
	}
	b.resident.timedForget()
	if &b.mapped[0] == first || b.copied.Load() != 0 {
		t.Fatalf("no new mapping after %d bytes copied (remapAfter %d)", 64<<10, b.remapAfter)
	}
	second := &b.mapped[0]
	b.resident.timedForget() // nothing copied through the new one yet
	if &b.mapped[0] != second {
		t.Error("the mapping was replaced with nothing copied through it")
	}
	read()
	// Four times remapAfter copied: the remap waits for the transfer.
	b.copied.Store(4 * b.remapAfter)
	b.mu.RLock()
	done := make(chan struct{})
	go func() {
		b.resident.timedForget()
		close(done)
	}()
	select {
	case <-done:
		t.Error("the forget returned while a transfer held the File: the overdue remap did not wait for it")
	case <-time.After(50 * time.Millisecond):
	}
	b.mu.RUnlock()
	<-done
	if &b.mapped[0] == second {
		t.Error("no new mapping after 4 × remapAfter copied and the transfer ended")
	}
	read()
}

// TestFileMap_RemapUnderLoad: copies from several goroutines while the
// mapping is replaced again and again read the file's bytes every time
// (run with -race).
func TestFileMap_RemapUnderLoad(t *testing.T) {
	data := seq(256 << 10)
	b, _, _ := countingFile(t, data)
	b.remapAfter = 4096
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Go(func() {
			got := make([]byte, 4096)
			for i := range 500 {
				off := int64((g*500+i)%64) << pageShift
				if !b.TryReadvAt([][]byte{got}, off) {
					continue // a page not known: a pread, or a failed try
				}
				if !bytes.Equal(got, data[off:][:4096]) {
					t.Errorf("read at %d: other bytes", off)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 200 {
			b.resident.timedForget()
			b.mu.RLock()
			b.learn(0, 256<<10)
			b.mu.RUnlock()
		}
	})
	wg.Wait()
}
