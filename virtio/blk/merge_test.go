package blk_test

import (
	"bytes"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/virtio"
	"github.com/vmm-dev/vmm/virtio/blk"
)

// Merged requests and the order of conflicting ones (merge.go, batch.go).

// vecCall is one ReadvAt or WritevAt a vecDisk saw.
type vecCall struct {
	op   byte
	off  int64
	bufs int
}

// vecDisk is a Vectored hookDisk: each ReadvAt or WritevAt is one hooked,
// logged backend call, which also lands in vcalls with its buffer count.
// With short set, a vectored call moves only its first buffer and reports
// no error.
type vecDisk struct {
	*hookDisk
	short bool

	vmu    sync.Mutex
	vcalls []vecCall
}

func newVecDisk(sectors int) *vecDisk { return &vecDisk{hookDisk: newHookDisk(sectors)} }

var _ blk.Vectored = (*vecDisk)(nil)

func (v *vecDisk) ReadvAt(bufs [][]byte, off int64) (int, error) {
	return v.vector(opRead, bufs, off, v.memDisk.ReadAt)
}

func (v *vecDisk) WritevAt(bufs [][]byte, off int64) (int, error) {
	return v.vector(opWrite, bufs, off, v.memDisk.WriteAt)
}

func (v *vecDisk) vector(op byte, bufs [][]byte, off int64, each func([]byte, int64) (int, error)) (int, error) {
	v.enter(op, off)
	defer v.leave()
	v.vmu.Lock()
	v.vcalls = append(v.vcalls, vecCall{op, off, len(bufs)})
	v.vmu.Unlock()
	done := 0
	for i, b := range bufs {
		if v.short && i > 0 {
			break
		}
		n, err := each(b, off+int64(done))
		done += n
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// vectored returns the vectored calls so far.
func (v *vecDisk) vectored() []vecCall {
	v.vmu.Lock()
	defer v.vmu.Unlock()
	return slices.Clone(v.vcalls)
}

// submitRun submits n requests of typ, each of per sectors, from sector
// first on, and returns their heads; a write's data is pattern(seed+i).
func submitRun(r *rig, typ uint32, first uint64, n, per int, seed byte) []uint16 {
	var heads []uint16
	for i := range n {
		sector := first + uint64(i*per)
		if typ == blk.TypeOut {
			heads = append(heads, r.submit(typ, sector, pattern(per*blk.SectorSize, seed+byte(i)), 0))
		} else {
			heads = append(heads, r.submit(typ, sector, nil, per*blk.SectorSize))
		}
	}
	return heads
}

// TestNotify_MergesAdjacentRequests: adjacent writes, then adjacent reads,
// each reach the backend as one vectored call over all their buffers; the
// data lands at each request's own sectors, every request is answered OK
// with its own length, and one interrupt covers the batch.
func TestNotify_MergesAdjacentRequests(t *testing.T) {
	disk := newVecDisk(diskSectors)
	r := newRigSize(t, disk, blk.Options{}, blk.FeatureFlush, inflightQueueSize)
	writes := submitRun(r, blk.TypeOut, 10, 4, 2, 40)
	r.notify()
	for _, u := range r.used(4) {
		if _, status := r.result(uint16(u.ID)); status != blk.StatusOK || u.Len != 1 {
			t.Errorf("write %d: status %d, len %d", u.ID, status, u.Len)
		}
	}
	for i := range writes {
		at := (10 + 2*i) * blk.SectorSize
		if !bytes.Equal(disk.data[at:at+2*blk.SectorSize], pattern(2*blk.SectorSize, 40+byte(i))) {
			t.Errorf("write %d is not at its sectors", i)
		}
	}
	reads := submitRun(r, blk.TypeIn, 10, 4, 2, 0)
	r.notify()
	r.used(4)
	for i, head := range reads {
		data, status := r.result(head)
		if status != blk.StatusOK || !bytes.Equal(data, pattern(2*blk.SectorSize, 40+byte(i))) {
			t.Errorf("read %d: status %d, data equal %v", i, status, bytes.Equal(data, pattern(2*blk.SectorSize, 40+byte(i))))
		}
	}
	want := []vecCall{{opWrite, 10 * blk.SectorSize, 4}, {opRead, 10 * blk.SectorSize, 4}}
	if got := disk.vectored(); !slices.Equal(got, want) {
		t.Errorf("vectored calls %v, want %v", got, want)
	}
	if n := r.irq.count(); n != 2 {
		t.Errorf("%d interrupts for 2 merged batches, want 2", n)
	}
}

// TestNotify_MergesOnlyNeighbours: requests that are not each other's
// neighbours in ring order and on disk stay apart: a gap, an overlap, a
// change of direction, a FLUSH, a GET_ID and a malformed request between
// them all split the run.
func TestNotify_MergesOnlyNeighbours(t *testing.T) {
	disk := newVecDisk(diskSectors)
	r := newRigSize(t, disk, blk.Options{Workers: 1}, blk.FeatureFlush, inflightQueueSize)
	ss := blk.SectorSize
	r.submit(blk.TypeOut, 0, pattern(ss, 1), 0)
	r.submit(blk.TypeOut, 2, pattern(ss, 2), 0) // a gap
	r.submit(blk.TypeOut, 2, pattern(ss, 3), 0) // the same sector again
	r.submit(blk.TypeIn, 3, nil, ss)            // the other direction
	r.submit(blk.TypeFlush, 0, nil, 0)
	r.submit(blk.TypeIn, 4, nil, ss)
	r.submit(blk.TypeGetID, 0, nil, blk.IDBytes)
	r.submit(blk.TypeIn, 5, nil, ss)
	r.submit(blk.TypeIn, 6, nil, 100) // not whole sectors: IOERR
	r.submit(blk.TypeIn, 6, nil, ss)
	r.notify()
	r.used(10)
	if got := disk.vectored(); len(got) != 0 {
		t.Errorf("vectored calls %v, want none", got)
	}
	log, _ := disk.calls()
	want := []backendOp{
		{opWrite, 0}, {opWrite, 2 * int64(ss)}, {opWrite, 2 * int64(ss)}, {opRead, 3 * int64(ss)},
		{opFlush, 0}, {opRead, 4 * int64(ss)}, {opRead, 5 * int64(ss)}, {opRead, 6 * int64(ss)},
	}
	if !slices.Equal(log, want) {
		t.Errorf("backend calls %v, want %v", log, want)
	}
	if !bytes.Equal(disk.data[2*ss:3*ss], pattern(ss, 3)) {
		t.Error("the later of two writes of a sector did not win")
	}
}

// TestNotify_MergeLimits: a merged call takes at most IOV_MAX (1024)
// buffers and 1 MiB; a run past either goes in several calls, in order,
// and every request still gets its own data.
func TestNotify_MergeLimits(t *testing.T) {
	t.Run("buffers", func(t *testing.T) {
		disk := newVecDisk(diskSectors)
		copy(disk.data, pattern(1200*blk.SectorSize, 6))
		r := newRig(t, disk, blk.Options{}, blk.FeatureFlush|virtio.FeatureIndirectDesc)
		lens := slices.Repeat([]int{blk.SectorSize}, 400)
		var heads []uint16
		for i := range 3 {
			heads = append(heads, r.drv.AddIndirectChain([][]byte{header(blk.TypeIn, uint64(400*i))}, append(slices.Clone(lens), 1)))
		}
		r.notify()
		r.used(3)
		for i, head := range heads {
			if data, status := r.result(head); status != blk.StatusOK || !bytes.Equal(data, disk.data[400*i*blk.SectorSize:400*(i+1)*blk.SectorSize]) {
				t.Errorf("read %d: status %d", i, status)
			}
		}
		want := []vecCall{{opRead, 0, 800}, {opRead, 800 * blk.SectorSize, 400}}
		if got := disk.vectored(); !slices.Equal(got, want) {
			t.Errorf("vectored calls %v, want %v", got, want)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		disk := newVecDisk(diskSectors * 2)
		r := newRigSize(t, disk, blk.Options{Workers: 1}, blk.FeatureFlush, inflightQueueSize)
		const per = 128 // 64 KiB
		submitRun(r, blk.TypeOut, 0, 20, per, 0)
		r.notify()
		r.used(20)
		want := []vecCall{{opWrite, 0, 16}, {opWrite, 16 * per * blk.SectorSize, 4}}
		if got := disk.vectored(); !slices.Equal(got, want) {
			t.Errorf("vectored calls %v, want %v", got, want)
		}
		for i := range 20 {
			at := i * per * blk.SectorSize
			if !bytes.Equal(disk.data[at:at+per*blk.SectorSize], pattern(per*blk.SectorSize, byte(i))) {
				t.Errorf("write %d is not at its sectors", i)
			}
		}
	})
}

// TestNotify_ShortMergedTransferRunsEachAlone: a merged call that moves
// less than asked, without an error, answers nothing; each request then
// runs on its own and is answered for what it did.
func TestNotify_ShortMergedTransferRunsEachAlone(t *testing.T) {
	disk := newVecDisk(diskSectors)
	disk.short = true
	r := newRigSize(t, disk, blk.Options{}, blk.FeatureFlush, inflightQueueSize)
	submitRun(r, blk.TypeOut, 0, 3, 1, 20)
	r.notify()
	for _, u := range r.used(3) {
		if _, status := r.result(uint16(u.ID)); status != blk.StatusOK {
			t.Errorf("write %d: status %d", u.ID, status)
		}
	}
	if !bytes.Equal(disk.data[:3*blk.SectorSize], slices.Concat(pattern(blk.SectorSize, 20), pattern(blk.SectorSize, 21), pattern(blk.SectorSize, 22))) {
		t.Error("the writes are not on disk")
	}
	log, _ := disk.calls()
	want := []backendOp{{opWrite, 0}, {opWrite, 0}, {opWrite, blk.SectorSize}, {opWrite, 2 * blk.SectorSize}}
	if !slices.Equal(log, want) {
		t.Errorf("backend calls %v, want the merged one then one each", log)
	}
}

// TestFile_MergedReadAcrossTheEnd: adjacent reads merged over a file that
// shrank under the disk: those still inside the file are OK with their
// bytes, the rest IOERR with zeroed buffers, though one preadv covered
// them all.
func TestFile_MergedReadAcrossTheEnd(t *testing.T) {
	const ss = blk.SectorSize
	content := pattern(64*ss, 8)
	path := tempDisk(t, content)
	r := newRigSize(t, openDisk(t, path, false), blk.Options{}, blk.FeatureFlush, inflightQueueSize)
	if err := os.Truncate(path, 13*ss); err != nil {
		t.Fatal(err)
	}
	heads := submitRun(r, blk.TypeIn, 8, 4, 2, 0) // sectors 8-9, 10-11, 12-13, 14-15
	r.notify()
	r.used(4)
	for i, want := range []struct {
		status byte
		data   []byte
	}{
		{blk.StatusOK, content[8*ss : 10*ss]},
		{blk.StatusOK, content[10*ss : 12*ss]},
		{blk.StatusIOErr, make([]byte, 2*ss)}, // straddles the end
		{blk.StatusIOErr, make([]byte, 2*ss)},
	} {
		if data, status := r.result(heads[i]); status != want.status || !bytes.Equal(data, want.data) {
			t.Errorf("read %d: status %d, data equal %v; want status %d", i, status, bytes.Equal(data, want.data), want.status)
		}
	}
}

// TestFile_MergedRequestsLand: on a file, lone and not, merged writes put
// each request's bytes at its sectors and merged reads bring them back,
// whether Notify tries them itself or a worker runs them.
func TestFile_MergedRequestsLand(t *testing.T) {
	const ss, per = blk.SectorSize, 8
	path := tempDisk(t, make([]byte, diskSectors*ss))
	for _, writeThrough := range []bool{false, true} {
		features := blk.FeatureFlush
		if writeThrough {
			features = 0
		}
		r := newRigSize(t, openDisk(t, path, false), blk.Options{}, features, inflightQueueSize)
		seed := byte(50)
		if writeThrough {
			seed = 90
		}
		submitRun(r, blk.TypeOut, 100, 16, per, seed)
		r.notify()
		for _, u := range r.used(16) {
			if _, status := r.result(uint16(u.ID)); status != blk.StatusOK {
				t.Errorf("write-through %v: write %d: status %d", writeThrough, u.ID, status)
			}
		}
		file := readFile(t, path)
		reads := submitRun(r, blk.TypeIn, 100, 16, per, 0)
		r.notify()
		r.used(16)
		for i, head := range reads {
			want := pattern(per*ss, seed+byte(i))
			at := (100 + i*per) * ss
			if !bytes.Equal(file[at:at+per*ss], want) {
				t.Errorf("write-through %v: write %d is not at its sectors", writeThrough, i)
			}
			if data, status := r.result(head); status != blk.StatusOK || !bytes.Equal(data, want) {
				t.Errorf("write-through %v: read %d: status %d", writeThrough, i, status)
			}
		}
	}
}

// holdWrites returns a hook that holds every write until release is
// closed, and reports each on arrived.
func holdWrites(arrived, release chan struct{}) func(byte, int64) {
	return func(op byte, _ int64) {
		if op != opWrite {
			return
		}
		select {
		case arrived <- struct{}{}:
		default: // the test waits for the first ones only
		}
		select {
		case <-release:
		case <-time.After(watchdog):
		}
	}
}

// TestNotify_ConflictsRunInRingOrder: with many workers, a read of
// sectors a held write is writing waits for it (and sees its bytes), and
// a write waits for an earlier read of its sectors (which sees the old
// bytes); a request that touches other sectors does not wait.
func TestNotify_ConflictsRunInRingOrder(t *testing.T) {
	ss := blk.SectorSize
	t.Run("read after write", func(t *testing.T) {
		disk := newVecDisk(diskSectors)
		arrived, release := make(chan struct{}, 1), make(chan struct{})
		disk.hook = holdWrites(arrived, release)
		r := newRigSize(t, disk, blk.Options{}, blk.FeatureFlush, inflightQueueSize)
		want := pattern(ss, 33)
		r.submit(blk.TypeOut, 5, want, 0)
		other := r.submit(blk.TypeIn, 9, nil, ss)
		after := r.submit(blk.TypeIn, 5, nil, ss)
		if err := r.dev.Notify(0); err != nil {
			t.Fatal(err)
		}
		await(t, arrived, "the write")
		var u []uint32
		deadline := time.Now().Add(watchdog)
		for len(u) == 0 && time.Now().Before(deadline) { // the other read completes meanwhile
			r.dev.Locked(func() {
				for _, e := range r.drv.Used() {
					u = append(u, e.ID)
				}
			})
			runtime.Gosched()
		}
		if !slices.Equal(u, []uint32{uint32(other)}) {
			t.Errorf("used %v while the write is held, want only the read of other sectors (%d)", u, other)
		}
		close(release)
		r.dev.WaitIdle()
		r.used(2)
		if data, status := r.result(after); status != blk.StatusOK || !bytes.Equal(data, want) {
			t.Errorf("read after the write: status %d, sees it %v", status, bytes.Equal(data, want))
		}
	})
	t.Run("write after read", func(t *testing.T) {
		disk := newVecDisk(diskSectors)
		old := pattern(ss, 44)
		copy(disk.data[5*ss:], old)
		hold := newHolder(1)
		disk.hook = func(op byte, off int64) {
			if op == opRead {
				hold.hook(op, off)
			}
		}
		r := newRigSize(t, disk, blk.Options{}, blk.FeatureFlush, inflightQueueSize)
		before := r.submit(blk.TypeIn, 5, nil, ss)
		r.submit(blk.TypeOut, 5, pattern(ss, 55), 0)
		if err := r.dev.Notify(0); err != nil {
			t.Fatal(err)
		}
		hold.wait(t, 1)
		time.Sleep(10 * time.Millisecond) // room for a wrong write to overtake
		close(hold.release)
		r.dev.WaitIdle()
		r.used(2)
		if data, status := r.result(before); status != blk.StatusOK || !bytes.Equal(data, old) {
			t.Errorf("read before the write: status %d, sees the old bytes %v", status, bytes.Equal(data, old))
		}
		if !bytes.Equal(disk.data[5*ss:6*ss], pattern(ss, 55)) {
			t.Error("the write is not on disk")
		}
	})
}

// TestNotify_FlushIsABarrier: writes, a FLUSH, writes: with many workers
// the FLUSH reaches the backend alone, after the writes before it and
// before those after it, and no write merges across it.
func TestNotify_FlushIsABarrier(t *testing.T) {
	disk := newVecDisk(diskSectors)
	arrived, release := make(chan struct{}, 2), make(chan struct{})
	disk.hook = holdWrites(arrived, release)
	r := newRigSize(t, disk, blk.Options{}, blk.FeatureFlush, inflightQueueSize)
	submitRun(r, blk.TypeOut, 0, 2, 1, 1)
	r.submit(blk.TypeFlush, 0, nil, 0)
	submitRun(r, blk.TypeOut, 2, 2, 1, 3)
	if err := r.dev.Notify(0); err != nil {
		t.Fatal(err)
	}
	await(t, arrived, "the first writes")
	time.Sleep(10 * time.Millisecond) // room for a wrong flush to overtake
	close(release)
	r.dev.WaitIdle()
	r.used(5)
	log, _ := disk.calls()
	want := []backendOp{{opWrite, 0}, {opFlush, 0}, {opWrite, 2 * blk.SectorSize}}
	if !slices.Equal(log, want) || disk.mostInside() != 1 {
		t.Errorf("backend calls %v, %d at once; want %v one at a time", log, disk.mostInside(), want)
	}
	if got := disk.vectored(); len(got) != 2 || got[0].bufs != 2 || got[1].bufs != 2 {
		t.Errorf("vectored calls %v, want two of 2 buffers", got)
	}
}

// TestNotify_MergedBatchInterrupts: a merged batch is signalled once, and
// not at all when the driver asked for no interrupt, by
// VIRTQ_AVAIL_F_NO_INTERRUPT or, with VIRTIO_F_EVENT_IDX, by a used_event
// the batch does not reach.
func TestNotify_MergedBatchInterrupts(t *testing.T) {
	for _, tc := range []struct {
		name     string
		features uint64
		set      func(r *rig)
		want     int
	}{
		{"asked", blk.FeatureFlush, func(*rig) {}, 1},
		{"NO_INTERRUPT", blk.FeatureFlush, func(r *rig) { r.drv.SetAvailFlags(virtio.AvailFNoInterrupt) }, 0},
		{"used_event reached", blk.FeatureFlush | virtio.FeatureEventIdx, func(r *rig) { r.drv.SetUsedEvent(3) }, 1},
		{"used_event beyond", blk.FeatureFlush | virtio.FeatureEventIdx, func(r *rig) { r.drv.SetUsedEvent(4) }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, backend := range []blk.Backend{newVecDisk(diskSectors), openDisk(t, tempDisk(t, make([]byte, diskSectors*blk.SectorSize)), false)} {
				r := newRigSize(t, backend, blk.Options{}, tc.features, inflightQueueSize)
				tc.set(r)
				submitRun(r, blk.TypeIn, 0, 4, 1, 0) // used.idx goes 0 to 4
				r.notify()
				r.used(4)
				if n := r.irq.count(); n != tc.want {
					t.Errorf("%T: %d interrupts, want %d", backend, n, tc.want)
				}
			}
		})
	}
}
