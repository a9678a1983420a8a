package blk_test

import (
	"bytes"
	"errors"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/virtio"
	"github.com/vmm-dev/vmm/virtio/blk"
)

// inflightQueueSize holds 21 three-descriptor requests.
const inflightQueueSize = 64

func TestNew_NegativeWorkers(t *testing.T) {
	if _, err := blk.New(newMemDisk(8), blk.Options{Workers: -1}); !errors.Is(err, blk.ErrWorkers) {
		t.Errorf("Workers -1: %v, want ErrWorkers", err)
	}
}

// TestNotify_RunsRequestsConcurrently: with more requests available than
// workers, exactly Workers of them are inside the backend at once (the
// barrier opens only when that many arrive) and no more workers exist,
// and every request, reads and writes mixed, completes with its own
// bytes and status.
func TestNotify_RunsRequestsConcurrently(t *testing.T) {
	for _, tt := range []struct {
		name    string
		workers int // 0: the default
		want    int
	}{
		{"default", 0, blk.DefaultWorkers},
		{"four", 4, 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			disk := newHookDisk(diskSectors)
			const readBase, writeBase = 100, 500
			n := tt.want + 4 // some wait for a worker
			for i := range n {
				copy(disk.data[(readBase+i)*blk.SectorSize:], pattern(blk.SectorSize, byte(i)))
			}
			r := newRigSize(t, disk, blk.Options{Workers: tt.workers}, blk.FeatureFlush, inflightQueueSize)
			b := newBarrier(tt.want)
			var mostRunning atomic.Int32
			disk.hook = func(op byte, off int64) {
				n := int32(r.dev.Running())
				for old := mostRunning.Load(); n > old && !mostRunning.CompareAndSwap(old, n); old = mostRunning.Load() {
				}
				b.hook(op, off)
			}
			reads, writes := map[uint16]int{}, map[uint16]int{}
			for i := range n {
				if i%2 == 0 {
					reads[r.submit(blk.TypeIn, uint64(readBase+i), nil, blk.SectorSize)] = i
				} else {
					writes[r.submit(blk.TypeOut, uint64(writeBase+i), pattern(blk.SectorSize, byte(100+i)), 0)] = i
				}
			}
			r.notify()
			if got := disk.mostInside(); got != tt.want {
				t.Errorf("%d requests inside the backend at once, want %d", got, tt.want)
			}
			if got := int(mostRunning.Load()); got != tt.want {
				t.Errorf("%d workers running, want %d", got, tt.want)
			}
			for _, u := range r.used(n) {
				if _, status := r.result(uint16(u.ID)); status != blk.StatusOK {
					t.Errorf("head %d: status %d", u.ID, status)
				}
			}
			for head, i := range reads {
				if data, _ := r.result(head); !bytes.Equal(data, pattern(blk.SectorSize, byte(i))) {
					t.Errorf("read %d returned other bytes", i)
				}
			}
			for _, i := range writes {
				got := disk.data[(writeBase+i)*blk.SectorSize : (writeBase+i+1)*blk.SectorSize]
				if !bytes.Equal(got, pattern(blk.SectorSize, byte(100+i))) {
					t.Errorf("write %d not on disk", i)
				}
			}
		})
	}
}

// TestNotify_CompletesOutOfOrder: the first request waits in the backend
// until the second has been returned and signalled, so the used ring
// holds them in the other order, each with its own length and bytes.
func TestNotify_CompletesOutOfOrder(t *testing.T) {
	disk := newHookDisk(diskSectors)
	copy(disk.data, pattern(2*blk.SectorSize, 3))
	r := newRig(t, disk, blk.Options{}, blk.FeatureFlush)
	disk.hook = func(_ byte, off int64) {
		if off != 0 {
			return
		}
		select { // on a worker's goroutine: no t.Fatal here
		case <-r.irq.signalled:
		case <-time.After(watchdog):
			t.Error("the second request was not signalled")
		}
	}
	first := r.submit(blk.TypeIn, 0, nil, 2*blk.SectorSize)
	second := r.submit(blk.TypeIn, 1, nil, blk.SectorSize)
	r.notify()
	u := r.used(2)
	if u[0].ID != uint32(second) || u[1].ID != uint32(first) {
		t.Fatalf("used %+v, want head %d then %d", u, second, first)
	}
	if u[0].Len != blk.SectorSize+1 || u[1].Len != 2*blk.SectorSize+1 {
		t.Errorf("used lengths %d, %d", u[0].Len, u[1].Len)
	}
	if data, _ := r.result(first); !bytes.Equal(data, disk.data[:2*blk.SectorSize]) {
		t.Error("first read returned other bytes")
	}
	if data, _ := r.result(second); !bytes.Equal(data, disk.data[blk.SectorSize:2*blk.SectorSize]) {
		t.Error("second read returned other bytes")
	}
}

// TestNotify_OneWorkerRunsInRingOrder: Workers 1 is the serial device:
// one worker, one request in the backend at a time, in ring order,
// returned in ring order, so a read after a write of the same sector sees
// the write.
func TestNotify_OneWorkerRunsInRingOrder(t *testing.T) {
	disk := newHookDisk(diskSectors)
	hold := newHolder(1)
	disk.hook = func(op byte, off int64) {
		if op == opWrite && off == 3*blk.SectorSize {
			hold.hook(op, off)
		}
	}
	r := newRigSize(t, disk, blk.Options{Workers: 1}, blk.FeatureFlush, inflightQueueSize)
	data := pattern(blk.SectorSize, 11)
	heads := []uint16{
		r.submit(blk.TypeOut, 3, data, 0),
		r.submit(blk.TypeIn, 1, nil, blk.SectorSize),
		r.submit(blk.TypeFlush, 0, nil, 0),
		r.submit(blk.TypeOut, 7, data, 0),
		r.submit(blk.TypeIn, 3, nil, blk.SectorSize),
	}
	if err := r.dev.Notify(0); err != nil {
		t.Fatal(err)
	}
	hold.wait(t, 1)
	if n := r.dev.Running(); n != 1 {
		t.Errorf("%d workers running, want 1", n)
	}
	close(hold.release)
	r.dev.WaitIdle()
	for i, u := range r.used(len(heads)) {
		if u.ID != uint32(heads[i]) {
			t.Errorf("used[%d] is head %d, want %d", i, u.ID, heads[i])
		}
	}
	log, _ := disk.calls()
	want := []backendOp{{opWrite, 3 * blk.SectorSize}, {opRead, blk.SectorSize}, {opFlush, 0}, {opWrite, 7 * blk.SectorSize}, {opRead, 3 * blk.SectorSize}}
	if !slices.Equal(log, want) {
		t.Errorf("backend calls %v, want %v", log, want)
	}
	if most := disk.mostInside(); most != 1 {
		t.Errorf("%d requests inside the backend at once", most)
	}
	if got, _ := r.result(heads[4]); !bytes.Equal(got, data) {
		t.Error("read after the write did not see it")
	}
}

// TestNotify_FlushFollowsCompletedWrites: a FLUSH reaches the backend
// after every write that completed before the driver submitted it.
func TestNotify_FlushFollowsCompletedWrites(t *testing.T) {
	disk := newHookDisk(diskSectors)
	r := newRigSize(t, disk, blk.Options{}, blk.FeatureFlush, inflightQueueSize)
	for i := range 8 {
		r.submit(blk.TypeOut, uint64(i), pattern(blk.SectorSize, byte(i)), 0)
	}
	r.notify()
	r.used(8)
	r.run(blk.TypeFlush, 0, nil, 0)
	log, _ := disk.calls()
	if len(log) != 9 || log[8].op != opFlush {
		t.Errorf("backend calls %v, want 8 writes then the flush", log)
	}
}

// TestNotify_BurstInterruptsOnce: requests finishing together are
// signalled once; a lone one is signalled at once.
func TestNotify_BurstInterruptsOnce(t *testing.T) {
	disk := newHookDisk(diskSectors)
	hold := newHolder(2)
	disk.hook = hold.hook
	r := newRig(t, disk, blk.Options{}, blk.FeatureFlush)
	r.submit(blk.TypeIn, 0, nil, blk.SectorSize)
	r.submit(blk.TypeIn, 1, nil, blk.SectorSize)
	if err := r.dev.Notify(0); err != nil {
		t.Fatal(err)
	}
	hold.wait(t, 2)
	// With the device lock held, both finish their I/O and queue up to
	// return their requests.
	r.dev.Locked(func() {
		close(hold.release)
		deadline := time.Now().Add(watchdog)
		for r.dev.Completing() < 2 && time.Now().Before(deadline) {
			runtime.Gosched()
		}
	})
	r.dev.WaitIdle()
	r.used(2)
	if n := r.irq.count(); n != 1 {
		t.Errorf("%d interrupts for a burst of 2 completions, want 1", n)
	}
	r.run(blk.TypeIn, 2, nil, blk.SectorSize)
	if n := r.irq.count(); n != 2 {
		t.Errorf("%d interrupts after a lone completion, want 2", n)
	}
}

// TestReset_WaitsForRunningRequests: Reset with requests inside the
// backend returns only after they finish, drops those no worker started,
// returns none of them to the driver, and leaves guest memory alone
// afterwards. The device then works on a fresh queue.
func TestReset_WaitsForRunningRequests(t *testing.T) {
	disk := newHookDisk(diskSectors)
	copy(disk.data, pattern(4*blk.SectorSize, 5))
	hold := newHolder(4)
	disk.hook = hold.hook
	r := newRigSize(t, disk, blk.Options{Workers: 2}, blk.FeatureFlush, inflightQueueSize)
	for i := range 4 {
		r.submit(blk.TypeIn, uint64(i), nil, blk.SectorSize)
	}
	if err := r.dev.Notify(0); err != nil {
		t.Fatal(err)
	}
	hold.wait(t, 2)
	// Let the held requests go only once Reset is waiting for them.
	go func() {
		for !r.dev.Resetting() {
			runtime.Gosched()
		}
		close(hold.release)
	}()
	r.dev.Reset()

	log, inside := disk.calls()
	if inside != 0 || r.dev.Running() != 0 {
		t.Fatalf("Reset returned with %d backend calls and %d workers running", inside, r.dev.Running())
	}
	if len(log) != 2 {
		t.Errorf("%d backend calls, want the 2 running when Reset began", len(log))
	}
	if idx := r.drv.UsedIdx(); idx != 0 {
		t.Errorf("used.idx %d after Reset, want 0", idx)
	}
	if err := r.dev.Notify(0); !errors.Is(err, blk.ErrNotActive) {
		t.Errorf("Notify after Reset = %v", err)
	}
	old := r.drv.Mem()
	before := snapshot(t, old)

	disk.hook = nil
	r.activate(testQueueSize)
	if data, status, _ := r.run(blk.TypeIn, 1, nil, blk.SectorSize); status != blk.StatusOK || !bytes.Equal(data, disk.data[blk.SectorSize:2*blk.SectorSize]) {
		t.Errorf("read after reactivation: status %d", status)
	}
	if !bytes.Equal(snapshot(t, old), before) {
		t.Error("the old guest memory changed after Reset returned")
	}
}

// snapshot copies all of mem.
func snapshot(t *testing.T, mem *guestmem.Memory) []byte {
	t.Helper()
	b := make([]byte, mem.Size())
	if err := mem.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestNotify_BrokenQueueWhileInFlight: a hostile chain behind a running
// request breaks the queue at once; the running request finishes but
// cannot be returned, and the next Notify still says NEEDS_RESET.
func TestNotify_BrokenQueueWhileInFlight(t *testing.T) {
	disk := newHookDisk(diskSectors)
	hold := newHolder(1)
	disk.hook = hold.hook
	r := newRig(t, disk, blk.Options{}, blk.FeatureFlush)
	r.submit(blk.TypeIn, 0, nil, blk.SectorSize)
	if err := r.dev.Notify(0); err != nil {
		t.Fatal(err)
	}
	hold.wait(t, 1)
	r.drv.AddLoop(3)
	if err := r.dev.Notify(0); !errors.Is(err, virtio.ErrNeedsReset) {
		t.Fatalf("Notify = %v, want ErrNeedsReset", err)
	}
	close(hold.release)
	r.dev.WaitIdle()
	if err := r.dev.Notify(0); !errors.Is(err, virtio.ErrNeedsReset) {
		t.Errorf("next Notify = %v, want ErrNeedsReset", err)
	}
	r.used(0)
}

// failingIRQ refuses every signal.
type failingIRQ struct{}

var errIRQ = errors.New("interrupt refused")

func (failingIRQ) Signal(int) error { return errIRQ }

// TestNotify_WorkerErrorSurfacesOnNextNotify: a failed interrupt, which a
// worker meets after Notify returned, comes back from the next Notify,
// once.
func TestNotify_WorkerErrorSurfacesOnNextNotify(t *testing.T) {
	r := newRig(t, newMemDisk(diskSectors), blk.Options{}, blk.FeatureFlush)
	q, err := virtio.NewQueue(testQueueSize)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Enable(r.drv.Mem(), r.drv.Config(blk.FeatureFlush)); err != nil {
		t.Fatal(err)
	}
	r.dev.Reset()
	if err := r.dev.Activate(r.drv.Mem(), blk.FeatureFlush, []*virtio.Queue{q}, failingIRQ{}); err != nil {
		t.Fatal(err)
	}
	r.submit(blk.TypeFlush, 0, nil, 0)
	r.notify()
	if err := r.dev.Notify(0); !errors.Is(err, errIRQ) {
		t.Errorf("next Notify = %v, want the interrupt's error", err)
	}
	if err := r.dev.Notify(0); err != nil {
		t.Errorf("Notify after that = %v", err)
	}
}
