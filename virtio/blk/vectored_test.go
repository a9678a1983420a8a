package blk_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"

	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/virtio"
	"github.com/vmm-dev/vmm/virtio/blk"
)

// Transfers straight between the backend and guest memory: File's
// preadv/pwritev and RWF_NOWAIT tries, and the device's lone-request path.

// split cuts b into buffers of the given lengths (the rest in a last one).
func split(b []byte, lens ...int) [][]byte {
	var out [][]byte
	for _, n := range lens {
		out = append(out, b[:n])
		b = b[n:]
	}
	return append(out, b)
}

func TestFile_ReadvWritevAt(t *testing.T) {
	const size = 8 * blk.SectorSize
	path := tempDisk(t, make([]byte, size))
	f := openDisk(t, path, false)
	want := pattern(3*blk.SectorSize, 4)
	if n, err := f.WritevAt(split(slices.Clone(want), 100, 0, 700), blk.SectorSize); n != len(want) || err != nil {
		t.Fatalf("WritevAt = %d, %v", n, err)
	}
	if got := readFile(t, path)[blk.SectorSize : 4*blk.SectorSize]; !bytes.Equal(got, want) {
		t.Error("file does not hold the written bytes")
	}
	got := make([]byte, len(want))
	if n, err := f.ReadvAt(split(got, 512, 1), blk.SectorSize); n != len(want) || err != nil || !bytes.Equal(got, want) {
		t.Errorf("ReadvAt = %d, %v; data equal %v", n, err, bytes.Equal(got, want))
	}
	// Past the end of the file: what is there, then io.EOF.
	n, err := f.ReadvAt(split(make([]byte, 2*blk.SectorSize), 700), size-blk.SectorSize)
	if n != blk.SectorSize || err != io.EOF {
		t.Errorf("ReadvAt across the end = %d, %v; want %d, EOF", n, err, blk.SectorSize)
	}
}

func TestFile_VectoredRefusals(t *testing.T) {
	path := tempDisk(t, make([]byte, 4*blk.SectorSize))
	ro := openDisk(t, path, true)
	if _, err := ro.WritevAt(split(make([]byte, blk.SectorSize), 10), 0); !errors.Is(err, syscall.EROFS) {
		t.Errorf("WritevAt on a read-only disk = %v, want EROFS", err)
	}
	if ro.TryWritevAt([][]byte{make([]byte, blk.SectorSize)}, 0) {
		t.Error("TryWritevAt on a read-only disk succeeded")
	}
	if !bytes.Equal(readFile(t, path), make([]byte, 4*blk.SectorSize)) {
		t.Error("the read-only disk changed")
	}
	rw := openDisk(t, path, false)
	if _, err := rw.ReadvAt(split(make([]byte, blk.SectorSize), 10), -1); err == nil {
		t.Error("ReadvAt at offset -1 succeeded")
	}
	if rw.TryReadvAt(split(make([]byte, blk.SectorSize), 10), -1) {
		t.Error("TryReadvAt at offset -1 succeeded")
	}
	closed, err := blk.NewFileBackend(path, false)
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	if _, err := closed.ReadvAt(split(make([]byte, blk.SectorSize), 10), 0); !errors.Is(err, os.ErrClosed) {
		t.Errorf("ReadvAt after Close = %v, want ErrClosed", err)
	}
	if closed.TryReadvAt([][]byte{make([]byte, blk.SectorSize)}, 0) {
		t.Error("TryReadvAt after Close succeeded")
	}
}

// TestFile_Try: a read of cached bytes succeeds at once; one past the end
// of the file reports false for the device to read it again and fail. A
// write with RWF_NOWAIT succeeds and is on the file, or the filesystem
// refuses it (ext4 does) and CanTry then says writes cannot be tried; a
// read-only disk never writes.
func TestFile_Try(t *testing.T) {
	content := pattern(4*blk.SectorSize, 6)
	path := tempDisk(t, content)
	f := openDisk(t, path, false)
	got := make([]byte, 2*blk.SectorSize)
	if !f.TryReadvAt(split(got, 100), blk.SectorSize) || !bytes.Equal(got, content[blk.SectorSize:3*blk.SectorSize]) {
		t.Error("TryReadvAt of cached bytes failed")
	}
	if f.TryReadvAt([][]byte{got}, 3*blk.SectorSize) {
		t.Error("TryReadvAt across the end of the file succeeded")
	}
	for i := range 2 { // the second try knows whether the filesystem refuses
		want := pattern(blk.SectorSize, byte(8+i))
		ok := f.TryWritevAt(split(want, 100), 0)
		if ok && !bytes.Equal(readFile(t, path)[:blk.SectorSize], want) {
			t.Error("TryWritevAt succeeded but the file does not hold the bytes")
		}
		if i == 1 && ok != f.CanTry(true) {
			t.Errorf("the second TryWritevAt reported %v, CanTry(write) %v", ok, f.CanTry(true))
		}
	}
	if ro := openDisk(t, path, true); ro.TryWritevAt([][]byte{content[:blk.SectorSize]}, 0) || ro.CanTry(true) {
		t.Error("a read-only disk tries writes")
	}
}

// TestNotify_LoneRequestRunsOnNotify: with nothing else in flight, a read
// the host's cache holds, and a GET_ID, are done and signalled by the time
// Notify returns, with no worker started.
func TestNotify_LoneRequestRunsOnNotify(t *testing.T) {
	content := pattern(diskSectors*blk.SectorSize, 2)
	r := newRig(t, openDisk(t, tempDisk(t, content), false), blk.Options{}, blk.FeatureFlush)
	var heads []uint16
	for i, submit := range []func() uint16{
		func() uint16 { return r.submit(blk.TypeIn, 9, nil, 2*blk.SectorSize) },
		func() uint16 { return r.submit(blk.TypeGetID, 0, nil, blk.IDBytes) },
	} {
		heads = append(heads, submit())
		if err := r.dev.Notify(0); err != nil {
			t.Fatal(err)
		}
		if u := r.drv.Used(); len(u) != 1 || u[0].ID != uint32(heads[i]) || r.irq.count() != i+1 || r.dev.Running() != 0 {
			t.Fatalf("request %d: used %+v, %d interrupts, %d workers when Notify returned", i, u, r.irq.count(), r.dev.Running())
		}
	}
	r.dev.WaitIdle()
	if data, status := r.result(heads[0]); status != blk.StatusOK || !bytes.Equal(data, content[9*blk.SectorSize:11*blk.SectorSize]) {
		t.Errorf("read: status %d", status)
	}
}

// tryDisk is a NonBlocking memDisk whose tries fail unless tries is set,
// a failed read leaving zeros in the buffers, as one that got part-way
// may leave anything; with refuses set, CanTry reports that the host
// takes no tries at all. It counts the tries; tests read the counts while
// the device is idle.
type tryDisk struct {
	*memDisk
	tries   bool
	refuses bool
	mu      sync.Mutex
	tried   int
	direct  int // ReadAt and WriteAt calls
}

func (d *tryDisk) try(bufs [][]byte, off int64, write bool) bool {
	d.mu.Lock()
	d.tried++
	d.mu.Unlock()
	if !d.tries {
		for _, b := range bufs {
			if !write { // a write's buffers are the guest's data: read only
				clear(b)
			}
		}
		return false
	}
	for _, b := range bufs {
		if write {
			d.memDisk.WriteAt(b, off)
		} else {
			d.memDisk.ReadAt(b, off)
		}
		off += int64(len(b))
	}
	return true
}

func (d *tryDisk) TryReadvAt(bufs [][]byte, off int64) bool  { return d.try(bufs, off, false) }
func (d *tryDisk) TryWritevAt(bufs [][]byte, off int64) bool { return d.try(bufs, off, true) }
func (d *tryDisk) CanTry(bool) bool                          { return !d.refuses }

func (d *tryDisk) ReadAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	d.direct++
	d.mu.Unlock()
	return d.memDisk.ReadAt(p, off)
}

func (d *tryDisk) WriteAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	d.direct++
	d.mu.Unlock()
	return d.memDisk.WriteAt(p, off)
}

func (d *tryDisk) counts() (tried, direct int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.tried, d.direct
}

var _ blk.NonBlocking = (*tryDisk)(nil)

// TestNotify_FailedTryGoesToAWorker: a lone request whose try fails is run
// afresh by a worker: the scribbles of the try are overwritten, and the
// request completes once, with its own bytes.
func TestNotify_FailedTryGoesToAWorker(t *testing.T) {
	disk := &tryDisk{memDisk: newMemDisk(diskSectors)}
	copy(disk.data[4*blk.SectorSize:], pattern(2*blk.SectorSize, 3))
	r := newRig(t, disk, blk.Options{}, blk.FeatureFlush)
	data, status, n := r.run(blk.TypeIn, 4, nil, 2*blk.SectorSize)
	if status != blk.StatusOK || n != 2*blk.SectorSize+1 || !bytes.Equal(data, pattern(2*blk.SectorSize, 3)) {
		t.Errorf("read: status %d, used len %d", status, n)
	}
	want := pattern(blk.SectorSize, 5)
	if _, status, _ := r.run(blk.TypeOut, 7, want, 0); status != blk.StatusOK || !bytes.Equal(disk.data[7*blk.SectorSize:8*blk.SectorSize], want) {
		t.Errorf("write: status %d", status)
	}
	if tried, direct := disk.counts(); tried != 2 || direct != 2 {
		t.Errorf("%d tries and %d ReadAt/WriteAt calls, want 2 and 2", tried, direct)
	}
	if n := r.irq.count(); n != 2 {
		t.Errorf("%d interrupts for 2 requests", n)
	}
}

// TestNotify_TriesOnlyWhatCannotWait: flushes, writes that must reach
// stable storage (no VIRTIO_BLK_F_FLUSH: write-through) and requests with
// others in flight are never tried; what is tried and succeeds needs no
// worker.
func TestNotify_TriesOnlyWhatCannotWait(t *testing.T) {
	t.Run("write-through and flush", func(t *testing.T) {
		disk := &tryDisk{memDisk: newMemDisk(diskSectors), tries: true}
		r := newRig(t, disk, blk.Options{}, 0)
		r.run(blk.TypeOut, 0, make([]byte, blk.SectorSize), 0)
		r.run(blk.TypeFlush, 0, nil, 0)
		if tried, _ := disk.counts(); tried != 0 || disk.flushes != 2 {
			t.Errorf("%d tries, %d flushes; want 0 and 2", tried, disk.flushes)
		}
	})
	t.Run("several in flight", func(t *testing.T) {
		disk := &tryDisk{memDisk: newMemDisk(diskSectors), tries: true}
		r := newRig(t, disk, blk.Options{}, blk.FeatureFlush)
		r.submit(blk.TypeIn, 0, nil, blk.SectorSize)
		r.submit(blk.TypeIn, 1, nil, blk.SectorSize)
		r.notify()
		r.used(2)
		if tried, direct := disk.counts(); tried != 0 || direct != 2 {
			t.Errorf("%d tries, %d direct calls; want 0 and 2", tried, direct)
		}
	})
	t.Run("lone, tried", func(t *testing.T) {
		disk := &tryDisk{memDisk: newMemDisk(diskSectors), tries: true}
		r := newRig(t, disk, blk.Options{}, blk.FeatureFlush)
		r.run(blk.TypeIn, 0, nil, blk.SectorSize)
		r.run(blk.TypeOut, 0, make([]byte, blk.SectorSize), 0)
		if tried, direct := disk.counts(); tried != 2 || direct != 0 {
			t.Errorf("%d tries, %d direct calls; want 2 and 0", tried, direct)
		}
	})
}

// TestNotify_MoreBuffersThanOneCall: requests with more data buffers than
// one backend call takes (64), in an indirect table, on a file (preadv,
// pwritev) and on a plain Backend (a call per buffer), lone and not.
func TestNotify_MoreBuffersThanOneCall(t *testing.T) {
	const bufs = 150
	lens := make([]int, bufs)
	for i := range lens {
		lens[i] = blk.SectorSize
	}
	lens[0], lens[1] = 100, 2*blk.SectorSize-100 // a sector split across buffers
	want := pattern(bufs*blk.SectorSize, 9)
	for _, tc := range []struct {
		name    string
		backend func(t *testing.T) blk.Backend
	}{
		{"file", func(t *testing.T) blk.Backend {
			return openDisk(t, tempDisk(t, make([]byte, diskSectors*blk.SectorSize)), false)
		}},
		{"plain", func(*testing.T) blk.Backend { return newMemDisk(diskSectors) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.backend(t), blk.Options{}, blk.FeatureFlush|virtio.FeatureIndirectDesc)
			var readable [][]byte
			readable = append(readable, header(blk.TypeOut, 3))
			readable = append(readable, split(slices.Clone(want), lens[:bufs-1]...)...)
			r.drv.AddIndirectChain(readable, []int{1})
			r.notify()
			if u := r.used(1); u[0].Len != 1 {
				t.Fatalf("write: used len %d", u[0].Len)
			}
			for _, lone := range []bool{true, false} {
				heads := []uint16{r.drv.AddIndirectChain([][]byte{header(blk.TypeIn, 3)}, append(slices.Clone(lens), 1))}
				if !lone {
					heads = append(heads, r.drv.AddIndirectChain([][]byte{header(blk.TypeIn, 3)}, append(slices.Clone(lens), 1)))
				}
				r.notify()
				r.used(len(heads))
				for _, head := range heads {
					if data, status := r.result(head); status != blk.StatusOK || !bytes.Equal(data, want) {
						t.Errorf("lone %v: read back: status %d, data equal %v", lone, status, bytes.Equal(data, want))
					}
				}
			}
		})
	}
}

// span is a guest buffer a fuzzed chain may have written.
type span struct {
	addr guestmem.GuestAddr
	n    int
}

// addChainAt is virtiotest's AddChain, also returning where the writable
// buffers lie.
func addChainAt(r *rig, readable [][]byte, writable []int) (uint16, []span) {
	var descs []virtio.Descriptor
	var spans []span
	for _, b := range readable {
		descs = append(descs, virtio.Descriptor{Addr: r.drv.Put(b), Len: uint32(len(b))})
	}
	for _, n := range writable {
		a := r.drv.Alloc(uint64(n))
		descs = append(descs, virtio.Descriptor{Addr: a, Len: uint32(n), Flags: virtio.DescFWrite})
		spans = append(spans, span{a, n})
	}
	head := r.drv.AddDescs(descs)
	r.drv.Publish(head)
	return head, spans
}

// following returns readable, split as it is, with the header's sector
// moved i requests on: to where the i-th of a run of such requests
// starts. A header too short to hold a sector is left as it is.
func following(readable [][]byte, writable []int, i int) [][]byte {
	flat := slices.Concat(readable...)
	if len(flat) < blk.HeaderSize {
		return readable
	}
	data := len(flat) - blk.HeaderSize // a write's data
	if binary.LittleEndian.Uint32(flat) == blk.TypeIn {
		data = -1 // the status
		for _, n := range writable {
			data += n
		}
	}
	sector := binary.LittleEndian.Uint64(flat[8:]) + uint64(i*max(data, 0)/blk.SectorSize)
	binary.LittleEndian.PutUint64(flat[8:], sector)
	out := make([][]byte, len(readable))
	for j, b := range readable {
		out[j], flat = flat[:len(b)], flat[len(b):]
	}
	return out
}

// FuzzFileRequests runs arbitrary request chains (FuzzParseRequest's
// encoding) through a Device on a file: first alone, which Notify may
// run itself (RWF_NOWAIT), then two at once, which workers run, then
// three in a row on the disk, which merge when they are sound reads or
// writes. Nothing
// may panic, every chain comes back once with its status last, and no
// byte of guest memory changes but the chains' writable buffers and the
// used ring.
func FuzzFileRequests(f *testing.F) {
	sector := make([]byte, blk.SectorSize)
	f.Add(fuzzSeed(0, [][]byte{header(blk.TypeIn, 1)}, []int{512, 1}))
	f.Add(fuzzSeed(0, [][]byte{header(blk.TypeIn, 62)}, []int{100, 924, 1}))
	f.Add(fuzzSeed(0, [][]byte{header(blk.TypeOut, 7), sector}, []int{1}))
	f.Add(fuzzSeed(0, [][]byte{header(blk.TypeOut, 0)[:6], header(blk.TypeOut, 0)[6:], sector[:200], sector[200:]}, []int{1}))
	f.Add(fuzzSeed(0, [][]byte{header(blk.TypeFlush, 0)}, []int{1}))
	f.Add(fuzzSeed(0, [][]byte{header(blk.TypeGetID, 0)}, []int{20, 1}))
	f.Add(fuzzSeed(0, [][]byte{header(blk.TypeIn, 64)}, []int{512, 1}))
	path := filepath.Join(f.TempDir(), "disk.img")
	if err := os.WriteFile(path, pattern(64*blk.SectorSize, 1), 0o600); err != nil {
		f.Fatal(err)
	}
	backend, err := blk.NewFileBackend(path, false)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { backend.Close() })
	f.Fuzz(func(t *testing.T, in []byte) {
		_, readable, writable, ok := fuzzChain(in)
		if !ok {
			return
		}
		// Room for three chains of up to 2*fuzzMaxBufs descriptors.
		r := newRigSize(t, backend, blk.Options{}, blk.FeatureFlush, inflightQueueSize)
		mem := r.drv.Mem()
		cfg := r.drv.Config(blk.FeatureFlush)
		for round, n := range []int{1, 2, 3} {
			heads := map[uint16][]span{}
			for i := range n {
				chain := readable
				if round == 2 { // each request where the one before ended: they may merge
					chain = following(readable, writable, i)
				}
				head, spans := addChainAt(r, chain, writable)
				heads[head] = spans
			}
			// Fill the free heap, so a stray write of zeros shows.
			free := r.drv.Alloc(0)
			fill := bytes.Repeat([]byte{0xA5}, int(mem.End()-free))
			if err := mem.WriteAt(fill, free); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, mem)
			r.notify()
			used := r.used(n)
			after := snapshot(t, mem)
			allowed := []span{{cfg.UsedRing, int(virtio.UsedRingSize(cfg.Size))}}
			for _, u := range used {
				spans, ok := heads[uint16(u.ID)]
				if !ok {
					t.Fatalf("used %+v, heads %v", u, heads)
				}
				delete(heads, uint16(u.ID))
				total, last := 0, -1 // last: the status byte
				for _, s := range spans {
					total += s.n
					if s.n > 0 {
						last = int(s.addr) + s.n - 1
					}
				}
				if int(u.Len) > total {
					t.Fatalf("used len %d, %d writable bytes", u.Len, total)
				}
				if last >= 0 && after[last] > blk.StatusUnsupp {
					t.Fatalf("status byte %d", after[last])
				}
				allowed = append(allowed, spans...)
			}
			for i := range before {
				if before[i] == after[i] {
					continue
				}
				if !slices.ContainsFunc(allowed, func(s span) bool { return i >= int(s.addr) && i < int(s.addr)+s.n }) {
					t.Fatalf("byte %#x of guest memory changed, outside the chains' writable buffers", i)
				}
			}
		}
	})
}
