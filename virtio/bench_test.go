package virtio_test

import (
	"encoding/binary"
	"testing"

	"github.com/vmm-dev/vmm/virtio"
)

// BenchmarkQueue_RequestWork is the virtqueue's part of one blk read with
// nothing else: the driver, working its rings in place as a guest does,
// publishes a three-descriptor chain (header, data, status); the device
// pops and validates it, reads the header, takes the data buffers, writes
// the status byte, finds the ring empty (arming avail_event), returns the
// chain and asks whether to notify.
func BenchmarkQueue_RequestWork(b *testing.B) {
	const size = 64
	mem, cfg, q := newBlkShapedQueue(b, size)
	avail, err := mem.Slice(cfg.AvailRing, virtio.AvailRingSize(size))
	if err != nil {
		b.Fatal(err)
	}
	var c virtio.Chain
	var idx uint16
	var hbuf [16]byte
	bufs := make([][]byte, 0, 4)
	used := []virtio.UsedElem{{}}
	b.ReportAllocs()
	for b.Loop() {
		binary.LittleEndian.PutUint16(avail[virtio.AvailRingOffset+2*uint64(idx%size):], 0)
		idx++
		binary.LittleEndian.PutUint16(avail[virtio.AvailIdxOffset:], idx)
		if ok, err := q.PopInto(mem, &c); !ok || err != nil {
			b.Fatal(ok, err)
		}
		if n, _ := c.Reader().Read(hbuf[:]); n != len(hbuf) {
			b.Fatal(n)
		}
		w := c.Writer()
		bufs, _, _ = w.Buffers(bufs[:0], c.WritableLen()-1, 4)
		if err := w.WriteByte(0); err != nil {
			b.Fatal(err)
		}
		if ok, err := q.PopInto(mem, &c); ok || err != nil {
			b.Fatal(ok, err)
		}
		used[0] = virtio.UsedElem{Head: 0, Written: w.Written()}
		if err := q.AddUsedBatch(mem, used); err != nil {
			b.Fatal(err)
		}
		if _, err := q.NeedsNotification(mem); err != nil {
			b.Fatal(err)
		}
	}
}
