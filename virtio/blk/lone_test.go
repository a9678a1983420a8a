package blk_test

import (
	"bytes"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/virtio"
	"github.com/vmm-dev/vmm/virtio/blk"
)

// scribbleDisk is a tryDisk that takes no tries and whose reads and writes
// fail: a read after scribbling over its buffer, as one that failed
// part-way may leave it.
type scribbleDisk struct{ *tryDisk }

func (d scribbleDisk) ReadAt(p []byte, off int64) (int, error) {
	d.tryDisk.ReadAt(p, off) // counts the call
	for i := range p {
		p[i] = 0xa5
	}
	return len(p) / 2, syscall.EIO
}

func (d scribbleDisk) WriteAt(p []byte, off int64) (int, error) {
	d.tryDisk.WriteAt(p, off)
	return 0, syscall.ENOSPC
}

// TestNotify_LoneBlockingTransferThatFails: a lone read and write that
// Notify makes with the blocking calls and that fail are answered before
// Notify returns, with IOERR, the read's buffer zeroed rather than holding
// what the failed call left there, and OnError hears each, naming its
// sector. Both were timed, and the device goes on.
func TestNotify_LoneBlockingTransferThatFails(t *testing.T) {
	disk := &tryDisk{memDisk: newMemDisk(diskSectors), refuses: true}
	copy(disk.data, pattern(diskSectors*blk.SectorSize, 8))
	var reported []error
	clock := &stepClock{step: time.Microsecond}
	opts := blk.Options{Clock: clock.read, OnError: func(_ uint16, err error) { reported = append(reported, err) }}
	r := newRig(t, scribbleDisk{disk}, opts, blk.FeatureFlush)

	head := r.submit(blk.TypeOut, 5, pattern(blk.SectorSize, 1), 0)
	notifyInline(t, r, head)
	if _, status := r.result(head); status != blk.StatusIOErr {
		t.Errorf("failed write: status %d, want IOERR", status)
	}
	head = r.submit(blk.TypeIn, 6, nil, 2*blk.SectorSize)
	notifyInline(t, r, head)
	data, status := r.result(head)
	if status != blk.StatusIOErr || !bytes.Equal(data, make([]byte, 2*blk.SectorSize)) {
		t.Errorf("failed read: status %d, buffer zeroed %v", status, bytes.Equal(data, make([]byte, 2*blk.SectorSize)))
	}
	if len(reported) != 2 || !errors.Is(reported[0], syscall.ENOSPC) || !strings.Contains(reported[0].Error(), "write sector 5") ||
		!errors.Is(reported[1], syscall.EIO) || !strings.Contains(reported[1].Error(), "read sector 6") {
		t.Errorf("OnError heard %v; want ENOSPC at write sector 5, then EIO at read sector 6", reported)
	}
	if clock.reads != 4 || r.irq.count() != 2 {
		t.Errorf("%d clock readings and %d interrupts for two transfers, want 4 and 2", clock.reads, r.irq.count())
	}

	// The same requests on the same device, with a disk that works.
	r2 := newRig(t, disk, blk.Options{Clock: clock.read}, blk.FeatureFlush)
	head = r2.submit(blk.TypeIn, 6, nil, 2*blk.SectorSize)
	notifyInline(t, r2, head)
	if data, status := r2.result(head); status != blk.StatusOK || !bytes.Equal(data, disk.data[6*blk.SectorSize:8*blk.SectorSize]) {
		t.Errorf("read from a working disk: status %d", status)
	}
}

// TestNotify_LoneRequest_InterruptsOnlyWhenAsked: a lone request answered
// on Notify interrupts the driver unless it set VIRTQ_AVAIL_F_NO_INTERRUPT,
// and with VIRTIO_F_EVENT_IDX only when used.idx passes used_event.
func TestNotify_LoneRequest_InterruptsOnlyWhenAsked(t *testing.T) {
	t.Run("avail flags", func(t *testing.T) {
		r := newRig(t, &tryDisk{memDisk: newMemDisk(diskSectors), tries: true}, blk.Options{}, blk.FeatureFlush)
		notifyInline(t, r, r.submit(blk.TypeIn, 0, nil, blk.SectorSize))
		r.drv.SetAvailFlags(virtio.AvailFNoInterrupt)
		notifyInline(t, r, r.submit(blk.TypeIn, 1, nil, blk.SectorSize))
		if n := r.irq.count(); n != 1 {
			t.Errorf("%d interrupts, want 1: the second request's driver asked for none", n)
		}
	})
	t.Run("event index", func(t *testing.T) {
		r := newRig(t, &tryDisk{memDisk: newMemDisk(diskSectors), tries: true}, blk.Options{}, blk.FeatureFlush|virtio.FeatureEventIdx)
		r.drv.SetUsedEvent(1) // interrupt when used.idx passes 1: at the second completion
		for i, want := range []int{0, 1, 1} {
			notifyInline(t, r, r.submit(blk.TypeIn, uint64(i), nil, blk.SectorSize))
			if n := r.irq.count(); n != want {
				t.Fatalf("after request %d: %d interrupts, want %d", i, n, want)
			}
		}
	})
}
