package blk_test

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/virtio/blk"
	"golang.org/x/sys/unix"
)

// The lone-request path as it is now: direct system calls, and chains the
// device reuses.

// dropCache writes path's pages back and asks the kernel to drop them, so
// the next read must wait for the disk; it skips the test where the
// filesystem keeps them (tmpfs). Pages still in another CPU's LRU batch
// are not dropped at once, so it asks until mincore finds none of the
// file's pages resident (checking one page only once let page 0, which
// the tests read, stay cached on a loaded host), and then until a
// preadv2(RWF_NOWAIT) of the last page, which the tests leave alone, fails.
// The file must be larger than a page.
func dropCache(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	resident := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
	probe := make([]byte, 4096)
	for range 50 {
		if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
			t.Skipf("fadvise: %v", err)
		}
		if err := blk.Mincore(m, resident); err != nil {
			t.Fatal(err)
		}
		if count(resident) == 0 {
			if _, err = unix.Preadv2(int(f.Fd()), [][]byte{probe}, fi.Size()-4096, unix.RWF_NOWAIT); err == unix.EAGAIN {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Skipf("the filesystem kept the file's pages cached (%d of %d resident; RWF_NOWAIT read: %v)", count(resident), len(resident), err)
}

// count is how many pages mincore found resident.
func count(resident []byte) int {
	n := 0
	for _, b := range resident {
		n += int(b & 1)
	}
	return n
}

// TestFile_TryReadOfUncachedPages_FailsOrReadsThem: RWF_NOWAIT meets pages
// that are not in the page cache with EAGAIN, so the try fails and a plain
// read then reads them. The kernel does start readahead for the pages a
// NOWAIT read misses, and on a loaded host that I/O can finish before the
// call looks again, so a try may also succeed; then it must have read the
// file's bytes. (In CI it did, about once in a few hundred runs.)
func TestFile_TryReadOfUncachedPages_FailsOrReadsThem(t *testing.T) {
	content := pattern(64*blk.SectorSize, 8)
	path := tempDisk(t, content)
	dropCache(t, path)
	f := openDisk(t, path, false)
	got := make([]byte, 4096)
	if f.TryReadvAt([][]byte{got}, 0) {
		t.Log("the try succeeded: the kernel's readahead landed first")
		if !bytes.Equal(got, content[:4096]) {
			t.Fatal("TryReadvAt reported success with bytes that are not the file's")
		}
		return
	}
	clear(got)
	if n, err := f.ReadvAt([][]byte{got}, 0); n != len(got) || err != nil || !bytes.Equal(got, content[:4096]) {
		t.Errorf("ReadvAt after the failed try = %d, %v", n, err)
	}
}

// TestNotify_LoneReadOfUncachedPages_RunsOnAWorker: the device's inline
// try of a read the cache cannot serve fails (EAGAIN), and a worker reads
// it: the guest gets the data and OK.
func TestNotify_LoneReadOfUncachedPages_RunsOnAWorker(t *testing.T) {
	content := pattern(64*blk.SectorSize, 9)
	path := tempDisk(t, content)
	dropCache(t, path)
	r := newRig(t, openDisk(t, path, false), blk.Options{}, blk.FeatureFlush)
	data, status, _ := r.run(blk.TypeIn, 16, nil, 4*blk.SectorSize)
	if status != blk.StatusOK || !bytes.Equal(data, content[16*blk.SectorSize:20*blk.SectorSize]) {
		t.Errorf("status %d, data equal %v", status, bytes.Equal(data, content[16*blk.SectorSize:20*blk.SectorSize]))
	}
}

// TestNotify_ReusedChainsKeepNothingOfEarlierRequests: requests of every
// shape one after the other, so each pops into the chain the one before
// it returned: one with more buffers than a chain holds inline, then
// smaller ones. Each gets its own data and status, and its used length
// counts its own writable bytes only.
func TestNotify_ReusedChainsKeepNothingOfEarlierRequests(t *testing.T) {
	disk := newMemDisk(64)
	r := newRig(t, disk, blk.Options{Workers: 1}, blk.FeatureFlush)
	const ss = blk.SectorSize
	// A write of five data buffers and a status.
	out := pattern(5*ss, 3)
	head := r.drv.AddChain([][]byte{header(blk.TypeOut, 2), out[:ss], out[ss : 2*ss], out[2*ss : 3*ss], out[3*ss : 4*ss], out[4*ss:]}, []int{1})
	r.notify()
	if u := r.used(1)[0]; u.ID != uint32(head) || u.Len != 1 {
		t.Fatalf("write: used %+v", u)
	}
	if _, status := r.result(head); status != blk.StatusOK {
		t.Fatalf("write: status %d", status)
	}
	// A read in three writable buffers and a status.
	head = r.drv.AddChain([][]byte{header(blk.TypeIn, 3)}, []int{100, ss - 100, ss, 1})
	r.notify()
	if u := r.used(1)[0]; u.ID != uint32(head) || u.Len != 2*ss+1 {
		t.Errorf("read: used %+v, want len %d", u, 2*ss+1)
	}
	if data, status := r.result(head); status != blk.StatusOK || !bytes.Equal(data, out[ss:3*ss]) {
		t.Errorf("read: status %d, data equal %v", status, bytes.Equal(data, out[ss:3*ss]))
	}
	// A flush: header and status only.
	if _, status, n := r.run(blk.TypeFlush, 0, nil, 0); status != blk.StatusOK || n != 1 {
		t.Errorf("flush: status %d, used len %d", status, n)
	}
	// A one-buffer read, and a GET_ID.
	if data, status, n := r.run(blk.TypeIn, 6, nil, ss); status != blk.StatusOK || n != ss+1 || !bytes.Equal(data, out[4*ss:]) {
		t.Errorf("last read: status %d, used len %d", status, n)
	}
	if data, status, n := r.run(blk.TypeGetID, 0, nil, blk.IDBytes); status != blk.StatusOK || n != blk.IDBytes+1 || !bytes.Equal(data, disk.id[:]) {
		t.Errorf("GET_ID: status %d, used len %d, id %q", status, n, data)
	}
}
