package blk_test

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/virtio/blk"
)

// Lone jobs whose transfer the backend cannot try (RWF_NOWAIT refused):
// Notify makes them with the blocking calls, timed, unless one was slow.

// stepClock is an Options.Clock that moves on by step at every reading and
// counts the readings. Only Notify's goroutine reads it: the test's.
type stepClock struct {
	now, step time.Duration
	reads     int
}

func (c *stepClock) read() time.Duration {
	c.reads++
	c.now += c.step
	return c.now
}

// notifyInline runs Notify and checks that it returned head itself: the
// request is in the used ring, and no worker runs, by the time it returns.
func notifyInline(t *testing.T, r *rig, head uint16) {
	t.Helper()
	if err := r.dev.Notify(0); err != nil {
		t.Fatal(err)
	}
	if u := r.drv.Used(); len(u) != 1 || u[0].ID != uint32(head) || r.dev.Running() != 0 {
		t.Fatalf("used %+v and %d workers when Notify returned; want head %d and none", u, r.dev.Running(), head)
	}
}

// TestNotify_LoneTransferThatCannotBeTried_RunsOnNotify: a lone read and a
// lone write on a backend that takes no tries are made by Notify with
// ReadAt and WriteAt, and returned before it returns.
func TestNotify_LoneTransferThatCannotBeTried_RunsOnNotify(t *testing.T) {
	disk := &tryDisk{memDisk: newMemDisk(diskSectors), refuses: true}
	clock := &stepClock{step: time.Microsecond}
	r := newRig(t, disk, blk.Options{Clock: clock.read}, blk.FeatureFlush)
	want := pattern(2*blk.SectorSize, 4)
	notifyInline(t, r, r.submit(blk.TypeOut, 5, want, 0))
	head := r.submit(blk.TypeIn, 5, nil, 2*blk.SectorSize)
	notifyInline(t, r, head)
	if data, status := r.result(head); status != blk.StatusOK || !bytes.Equal(data, want) {
		t.Errorf("read back: status %d, data equal %v", status, bytes.Equal(data, want))
	}
	if tried, direct := disk.counts(); tried != 0 || direct != 2 {
		t.Errorf("%d tries and %d ReadAt/WriteAt calls, want 0 and 2", tried, direct)
	}
	if clock.reads != 4 {
		t.Errorf("%d clock readings for two transfers, want 4", clock.reads)
	}
}

// TestNotify_SlowInlineTransfers_HandLoneJobsToWorkers: one blocking
// transfer that took longer than the host's cache would changes nothing;
// after two in a row the next 256 lone jobs go to workers (Notify times
// none of them), then Notify makes one itself again, and one more slow one
// is enough to hand the next 256 to workers. Every request completes
// with its data.
func TestNotify_SlowInlineTransfers_HandLoneJobsToWorkers(t *testing.T) {
	disk := &tryDisk{memDisk: newMemDisk(diskSectors), refuses: true}
	copy(disk.data, pattern(diskSectors*blk.SectorSize, 6))
	clock := &stepClock{step: time.Microsecond}
	r := newRig(t, disk, blk.Options{Clock: clock.read}, blk.FeatureFlush)
	sector := uint64(0)
	read := func(step time.Duration) {
		t.Helper()
		clock.step = step
		sector = (sector + 1) % diskSectors
		data, status, _ := r.run(blk.TypeIn, sector, nil, blk.SectorSize)
		if status != blk.StatusOK || !bytes.Equal(data, disk.data[sector*blk.SectorSize:(sector+1)*blk.SectorSize]) {
			t.Fatalf("sector %d: status %d", sector, status)
		}
	}
	const fast, slow = time.Microsecond, time.Millisecond
	for _, tc := range []struct {
		name  string
		steps []time.Duration
		reads int // clock readings the steps' requests make
	}{
		{"one slow", []time.Duration{slow, fast, fast}, 6},
		{"two slow in a row", []time.Duration{slow, slow}, 4},
		{"the next 256", slices.Repeat([]time.Duration{fast}, 256), 0},
		{"the 257th, slow", []time.Duration{slow}, 2},
		{"the next 256 again", slices.Repeat([]time.Duration{slow}, 256), 0},
		{"the 257th, fast, and on", []time.Duration{fast, fast}, 4},
	} {
		before := clock.reads
		for _, step := range tc.steps {
			read(step)
		}
		if n := clock.reads - before; n != tc.reads {
			t.Fatalf("%s: %d clock readings, want %d", tc.name, n, tc.reads)
		}
	}
}

// TestNotify_FlushAndWriteThroughGoToWorkers: where the backend takes no
// tries, a FLUSH and a write-through write (no VIRTIO_BLK_F_FLUSH) are
// still never made on Notify's goroutine: their fdatasync waits for the
// disk.
func TestNotify_FlushAndWriteThroughGoToWorkers(t *testing.T) {
	for _, features := range []uint64{blk.FeatureFlush, 0} {
		disk := &tryDisk{memDisk: newMemDisk(diskSectors), refuses: true}
		clock := &stepClock{step: time.Microsecond}
		r := newRig(t, disk, blk.Options{Clock: clock.read}, features)
		if features == 0 {
			r.run(blk.TypeOut, 0, make([]byte, blk.SectorSize), 0)
		} else {
			r.run(blk.TypeFlush, 0, nil, 0)
		}
		if clock.reads != 0 || disk.flushes != 1 {
			t.Errorf("features %#x: %d clock readings, %d flushes; want 0 and 1", features, clock.reads, disk.flushes)
		}
	}
}
