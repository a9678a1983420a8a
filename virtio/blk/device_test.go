package blk_test

import (
	"bytes"
	"errors"
	"syscall"
	"testing"

	"github.com/vmm-dev/vmm/virtio"
	"github.com/vmm-dev/vmm/virtio/blk"
)

const diskSectors = 2048 // 1 MiB

func TestNotify_ReadReturnsFileBytes(t *testing.T) {
	content := pattern(diskSectors*blk.SectorSize, 1)
	r := newRig(t, openDisk(t, tempDisk(t, content), false), blk.Options{}, blk.FeatureFlush)
	data, status, n := r.run(blk.TypeIn, 2, nil, 3*blk.SectorSize)
	if status != blk.StatusOK || n != 3*blk.SectorSize+1 {
		t.Fatalf("status %d, used len %d", status, n)
	}
	if !bytes.Equal(data, content[2*blk.SectorSize:5*blk.SectorSize]) {
		t.Error("read returned other bytes than the file's")
	}
}

// TestNotify_ReadLargerThanChunk: a read bigger than the bounce buffer,
// into buffers whose boundaries fall mid-sector.
func TestNotify_ReadLargerThanChunk(t *testing.T) {
	content := pattern(diskSectors*blk.SectorSize, 5)
	r := newRig(t, openDisk(t, tempDisk(t, content), false), blk.Options{}, blk.FeatureFlush)
	const n = 600 * blk.SectorSize
	head := r.drv.AddChain([][]byte{header(blk.TypeIn, 10)}, []int{777, n - 777 - 3, 3 + 1})
	r.notify()
	if u := r.used(1)[0]; u.Len != n+1 {
		t.Errorf("used len %d, want %d", u.Len, n+1)
	}
	data, status := r.result(head)
	if status != blk.StatusOK || !bytes.Equal(data, content[10*blk.SectorSize:10*blk.SectorSize+n]) {
		t.Errorf("status %d; data equal %v", status, bytes.Equal(data, content[10*blk.SectorSize:10*blk.SectorSize+n]))
	}
}

func TestNotify_WriteThenRead(t *testing.T) {
	path := tempDisk(t, make([]byte, diskSectors*blk.SectorSize))
	r := newRig(t, openDisk(t, path, false), blk.Options{}, blk.FeatureFlush)
	want := pattern(2*blk.SectorSize, 9)
	if _, status, n := r.run(blk.TypeOut, 5, want, 0); status != blk.StatusOK || n != 1 {
		t.Fatalf("write: status %d, used len %d", status, n)
	}
	if got := readFile(t, path)[5*blk.SectorSize : 7*blk.SectorSize]; !bytes.Equal(got, want) {
		t.Error("file does not hold the written bytes")
	}
	if data, status, _ := r.run(blk.TypeIn, 5, nil, len(want)); status != blk.StatusOK || !bytes.Equal(data, want) {
		t.Errorf("read back: status %d, data equal %v", status, bytes.Equal(data, want))
	}
}

func TestNotify_Flush(t *testing.T) {
	disk := newMemDisk(diskSectors)
	r := newRig(t, disk, blk.Options{}, blk.FeatureFlush)
	if _, status, n := r.run(blk.TypeFlush, 0, nil, 0); status != blk.StatusOK || n != 1 {
		t.Fatalf("status %d, used len %d", status, n)
	}
	if disk.flushes != 1 {
		t.Errorf("%d backend flushes, want 1", disk.flushes)
	}
	// The file backend's fdatasync succeeds on a temp file.
	f := newRig(t, openDisk(t, tempDisk(t, make([]byte, 4096)), false), blk.Options{}, blk.FeatureFlush)
	if _, status, _ := f.run(blk.TypeFlush, 0, nil, 0); status != blk.StatusOK {
		t.Errorf("file flush: status %d", status)
	}
}

// TestNotify_WritesThroughWithoutFlushFeature: a driver that did not take
// VIRTIO_BLK_F_FLUSH gets every write made durable before it completes.
func TestNotify_WritesThroughWithoutFlushFeature(t *testing.T) {
	disk := newMemDisk(diskSectors)
	r := newRig(t, disk, blk.Options{}, 0)
	if _, status, _ := r.run(blk.TypeOut, 0, make([]byte, blk.SectorSize), 0); status != blk.StatusOK {
		t.Fatalf("status %d", status)
	}
	if disk.flushes != 1 {
		t.Errorf("%d flushes after a write, want 1", disk.flushes)
	}
}

func TestNotify_GetID(t *testing.T) {
	disk := openDisk(t, tempDisk(t, make([]byte, 4096)), false)
	want := disk.ID()
	if bytes.Equal(want[:], make([]byte, blk.IDBytes)) {
		t.Fatal("file backend has an empty ID")
	}
	r := newRig(t, disk, blk.Options{}, blk.FeatureFlush)
	for _, size := range []int{blk.IDBytes, 40} {
		data, status, n := r.run(blk.TypeGetID, 0, nil, size)
		if status != blk.StatusOK || n != uint32(size)+1 {
			t.Fatalf("buffer %d: status %d, used len %d", size, status, n)
		}
		if !bytes.Equal(data[:blk.IDBytes], want[:]) || !bytes.Equal(data[blk.IDBytes:], make([]byte, size-blk.IDBytes)) {
			t.Errorf("buffer %d: ID %q, want %q zero-padded", size, data, want)
		}
	}
}

func TestNotify_ReadOnlyRefusesWrites(t *testing.T) {
	content := pattern(diskSectors*blk.SectorSize, 3)
	for _, tt := range []struct {
		name      string
		backendRO bool
		optionRO  bool
	}{
		{"read-only file", true, false},
		{"read-only option", false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := tempDisk(t, content)
			r := newRig(t, openDisk(t, path, tt.backendRO), blk.Options{ReadOnly: tt.optionRO}, blk.FeatureFlush|blk.FeatureRO)
			if r.dev.Features()&blk.FeatureRO == 0 {
				t.Error("VIRTIO_BLK_F_RO not offered")
			}
			if _, status, _ := r.run(blk.TypeOut, 0, make([]byte, blk.SectorSize), 0); status != blk.StatusIOErr {
				t.Errorf("write: status %d, want IOERR", status)
			}
			if !bytes.Equal(readFile(t, path), content) {
				t.Error("read-only disk changed")
			}
			if data, status, _ := r.run(blk.TypeIn, 0, nil, blk.SectorSize); status != blk.StatusOK || !bytes.Equal(data, content[:blk.SectorSize]) {
				t.Errorf("read: status %d", status)
			}
			if _, status, _ := r.run(blk.TypeFlush, 0, nil, 0); status != blk.StatusOK {
				t.Errorf("flush: status %d", status)
			}
		})
	}
}

func TestNotify_PastTheEndIsIOErr(t *testing.T) {
	content := pattern(diskSectors*blk.SectorSize, 4)
	path := tempDisk(t, content)
	r := newRig(t, openDisk(t, path, false), blk.Options{}, blk.FeatureFlush)
	for _, tt := range []struct {
		name   string
		typ    uint32
		sector uint64
		out    []byte
		in     int
	}{
		{"read at capacity", blk.TypeIn, diskSectors, nil, blk.SectorSize},
		{"read straddling the end", blk.TypeIn, diskSectors - 1, nil, 2 * blk.SectorSize},
		{"write straddling the end", blk.TypeOut, diskSectors - 1, make([]byte, 2*blk.SectorSize), 0},
		{"write far past the end", blk.TypeOut, 1 << 62, make([]byte, blk.SectorSize), 0},
		{"write with wrapping sector", blk.TypeOut, ^uint64(0), make([]byte, blk.SectorSize), 0},
	} {
		if _, status, _ := r.run(tt.typ, tt.sector, tt.out, tt.in); status != blk.StatusIOErr {
			t.Errorf("%s: status %d, want IOERR", tt.name, status)
		}
	}
	if !bytes.Equal(readFile(t, path), content) {
		t.Error("disk changed")
	}
}

// TestNotify_MalformedRequests: each malformed request gets its status in
// its last writable byte, is returned, and is reported to OnError; the
// device goes on serving.
func TestNotify_MalformedRequests(t *testing.T) {
	var reported []error
	opts := blk.Options{OnError: func(_ uint16, err error) { reported = append(reported, err) }}
	r := newRig(t, newMemDisk(diskSectors), opts, blk.FeatureFlush)
	for _, tt := range []struct {
		name     string
		readable [][]byte
		writable []int
		status   byte
		err      error
	}{
		{"unknown type", [][]byte{header(0x4242, 0)}, []int{1}, blk.StatusUnsupp, blk.ErrUnsupported},
		{"short header", [][]byte{header(blk.TypeIn, 0)[:8]}, []int{512, 1}, blk.StatusIOErr, blk.ErrShortHeader},
		{"read into readable data", [][]byte{header(blk.TypeIn, 0), make([]byte, 512)}, []int{1}, blk.StatusIOErr, blk.ErrDataDirection},
		{"odd length", [][]byte{header(blk.TypeIn, 0)}, []int{100, 1}, blk.StatusIOErr, blk.ErrDataLength},
		{"small GET_ID", [][]byte{header(blk.TypeGetID, 0)}, []int{8, 1}, blk.StatusIOErr, blk.ErrIDTooSmall},
	} {
		reported = nil
		head := r.drv.AddChain(tt.readable, tt.writable)
		r.notify()
		u := r.used(1)[0]
		data, status := r.result(head)
		if status != tt.status || u.Len != uint32(len(data))+1 {
			t.Errorf("%s: status %d, used len %d; want status %d, len %d", tt.name, status, u.Len, tt.status, len(data)+1)
		}
		if len(reported) != 1 || !errors.Is(reported[0], tt.err) {
			t.Errorf("%s: OnError heard %v, want %v", tt.name, reported, tt.err)
		}
	}
	// No writable byte: nothing to write, the chain still comes back.
	r.drv.AddChain([][]byte{header(blk.TypeFlush, 0)}, nil)
	r.notify()
	if u := r.used(1)[0]; u.Len != 0 {
		t.Errorf("no status byte: used len %d, want 0", u.Len)
	}
	if _, status, _ := r.run(blk.TypeFlush, 0, nil, 0); status != blk.StatusOK {
		t.Errorf("after malformed requests: flush status %d", status)
	}
}

// TestNotify_HostErrorsAreIOErr: ENOSPC, EIO and a failed fdatasync become
// IOERR for that request only.
func TestNotify_HostErrorsAreIOErr(t *testing.T) {
	disk := newMemDisk(diskSectors)
	var reported []error
	opts := blk.Options{OnError: func(_ uint16, err error) { reported = append(reported, err) }}
	r := newRig(t, disk, opts, blk.FeatureFlush)

	disk.writeErr, disk.readErr, disk.flushErr = syscall.ENOSPC, syscall.EIO, syscall.EIO
	if _, status, _ := r.run(blk.TypeOut, 0, make([]byte, blk.SectorSize), 0); status != blk.StatusIOErr {
		t.Errorf("ENOSPC write: status %d", status)
	}
	if len(reported) != 1 || !errors.Is(reported[0], syscall.ENOSPC) {
		t.Errorf("OnError heard %v, want ENOSPC", reported)
	}
	// A failed read leaves zeros, not stale bytes, before the status.
	data, status, n := r.run(blk.TypeIn, 0, nil, 2*blk.SectorSize)
	if status != blk.StatusIOErr || n != 2*blk.SectorSize+1 || !bytes.Equal(data, make([]byte, 2*blk.SectorSize)) {
		t.Errorf("EIO read: status %d, used len %d", status, n)
	}
	if _, status, _ := r.run(blk.TypeFlush, 0, nil, 0); status != blk.StatusIOErr {
		t.Errorf("failed flush: status %d", status)
	}

	disk.writeErr, disk.readErr, disk.flushErr = nil, nil, nil
	if _, status, _ := r.run(blk.TypeOut, 0, make([]byte, blk.SectorSize), 0); status != blk.StatusOK {
		t.Errorf("after the errors: write status %d", status)
	}
}

// TestNotify_SeveralChainsInOneNotify: one Notify runs every request made
// available, which may complete in any order, and interrupts at least
// once.
func TestNotify_SeveralChainsInOneNotify(t *testing.T) {
	disk := newMemDisk(diskSectors)
	copy(disk.data[blk.SectorSize:], pattern(blk.SectorSize, 7))
	r := newRig(t, disk, blk.Options{}, blk.FeatureFlush)
	w := r.submit(blk.TypeOut, 4, pattern(blk.SectorSize, 8), 0)
	rd := r.submit(blk.TypeIn, 1, nil, blk.SectorSize)
	fl := r.submit(blk.TypeFlush, 0, nil, 0)
	r.notify()
	got := map[uint32]bool{}
	for _, u := range r.used(3) {
		got[u.ID] = true
	}
	for i, head := range []uint16{w, rd, fl} {
		if !got[uint32(head)] {
			t.Errorf("request %d (head %d) not returned", i, head)
		}
		if _, status := r.result(head); status != blk.StatusOK {
			t.Errorf("request %d: status %d", i, status)
		}
	}
	if data, _ := r.result(rd); !bytes.Equal(data, pattern(blk.SectorSize, 7)) {
		t.Error("read returned the wrong bytes")
	}
	if !bytes.Equal(disk.data[4*blk.SectorSize:5*blk.SectorSize], pattern(blk.SectorSize, 8)) {
		t.Error("write not on disk")
	}
	if n := r.irq.count(); n < 1 || n > 3 {
		t.Errorf("%d interrupts for 3 requests", n)
	}
}

func TestNotify_InterruptOnlyWhenNeeded(t *testing.T) {
	t.Run("no EVENT_IDX", func(t *testing.T) {
		r := newRig(t, newMemDisk(diskSectors), blk.Options{}, blk.FeatureFlush)
		r.notify()
		if r.irq.count() != 0 {
			t.Errorf("%d interrupts with nothing used", r.irq.count())
		}
		r.drv.SetAvailFlags(virtio.AvailFNoInterrupt)
		r.run(blk.TypeFlush, 0, nil, 0)
		if r.irq.count() != 0 {
			t.Errorf("interrupt despite VIRTQ_AVAIL_F_NO_INTERRUPT")
		}
		r.drv.SetAvailFlags(0)
		r.run(blk.TypeFlush, 0, nil, 0)
		if r.irq.count() != 1 {
			t.Errorf("%d interrupts, want 1", r.irq.count())
		}
	})
	t.Run("EVENT_IDX", func(t *testing.T) {
		r := newRig(t, newMemDisk(diskSectors), blk.Options{}, blk.FeatureFlush|virtio.FeatureEventIdx)
		r.drv.SetUsedEvent(5) // interrupt when used.idx passes 5
		for i := range 5 {
			r.run(blk.TypeFlush, 0, nil, 0)
			if r.irq.count() != 0 {
				t.Fatalf("request %d: interrupt before used_event", i)
			}
		}
		r.run(blk.TypeFlush, 0, nil, 0)
		if r.irq.count() != 1 {
			t.Errorf("%d interrupts after used_event, want 1", r.irq.count())
		}
	})
}

func TestNotify_BrokenQueueNeedsReset(t *testing.T) {
	r := newRig(t, newMemDisk(diskSectors), blk.Options{}, blk.FeatureFlush)
	r.drv.AddLoop(3)
	if err := r.dev.Notify(0); !errors.Is(err, virtio.ErrNeedsReset) {
		t.Fatalf("Notify = %v, want ErrNeedsReset", err)
	}
	if err := r.dev.Notify(0); !errors.Is(err, virtio.ErrNeedsReset) {
		t.Errorf("second Notify = %v, want ErrNeedsReset", err)
	}
}

func TestNotify_DeviceMisuse(t *testing.T) {
	dev, err := blk.New(newMemDisk(8), blk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.Notify(0); !errors.Is(err, blk.ErrNotActive) {
		t.Errorf("Notify before Activate = %v", err)
	}
	if err := dev.Activate(nil, 0, []*virtio.Queue{nil}, &irqRecorder{}); !errors.Is(err, blk.ErrNoQueue) {
		t.Errorf("Activate without a queue = %v", err)
	}
	r := newRig(t, newMemDisk(8), blk.Options{}, 0)
	if err := r.dev.Notify(1); !errors.Is(err, blk.ErrQueueIndex) {
		t.Errorf("Notify(1) = %v", err)
	}
	r.dev.Reset()
	if err := r.dev.Notify(0); !errors.Is(err, blk.ErrNotActive) {
		t.Errorf("Notify after Reset = %v", err)
	}
}

// shortDisk is a memDisk whose ReadAt and WriteAt move half of what they
// are asked and report no error: a broken backend.
type shortDisk struct{ *memDisk }

func (s shortDisk) ReadAt(p []byte, off int64) (int, error) {
	n, _ := s.memDisk.ReadAt(p[:len(p)/2], off)
	return n, nil
}

func (s shortDisk) WriteAt(p []byte, off int64) (int, error) {
	n, _ := s.memDisk.WriteAt(p[:len(p)/2], off)
	return n, nil
}

// A short transfer is a failed one even when the backend says nothing is
// wrong: the guest never gets a half-filled buffer reported OK.
func TestNotify_ShortTransferWithoutErrorIsIOErr(t *testing.T) {
	r := newRig(t, shortDisk{newMemDisk(8)}, blk.Options{}, 0)
	if _, status, _ := r.run(blk.TypeIn, 0, nil, blk.SectorSize); status != blk.StatusIOErr {
		t.Errorf("short read: status %d, want IOERR", status)
	}
	if _, status, _ := r.run(blk.TypeOut, 1, pattern(blk.SectorSize, 3), 0); status != blk.StatusIOErr {
		t.Errorf("short write: status %d, want IOERR", status)
	}
}
