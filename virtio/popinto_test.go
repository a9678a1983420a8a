package virtio_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/virtio"
	"github.com/vmm-dev/vmm/virtio/virtiotest"
)

// Chains a device reuses: PopInto overwrites all of a chain it popped
// before, so none of a previous request's buffers, lengths or head
// reaches the next.

// contents reads all of c's readable bytes and the lengths of its
// writable buffers, by filling them.
func contents(t *testing.T, c *virtio.Chain) (readable []byte, writable uint32) {
	t.Helper()
	readable, err := io.ReadAll(c.Reader())
	if err != nil {
		t.Fatal(err)
	}
	w := c.Writer()
	n, _ := w.Write(make([]byte, c.WritableLen()+1))
	return readable, uint32(n)
}

func TestQueuePopInto_ReusedChainHoldsOnlyTheNewChain(t *testing.T) {
	q, d := newQueue(t, 64<<10, 16, 0)
	// A chain of five readable buffers (past the chain's inline room)
	// and three writable ones, then a chain with one of each.
	big := [][]byte{[]byte("aaaa"), []byte("bbbb"), []byte("cccc"), []byte("dddd"), []byte("eeee")}
	d.AddChain(big, []int{7, 8, 9})
	second := d.AddChain([][]byte{[]byte("new")}, []int{2})
	var c virtio.Chain
	if ok, err := q.PopInto(d.Mem(), &c); !ok || err != nil {
		t.Fatalf("first PopInto = %v, %v", ok, err)
	}
	if r, w := contents(t, &c); string(r) != "aaaabbbbccccddddeeee" || w != 24 {
		t.Fatalf("first chain: readable %q, %d writable bytes", r, w)
	}
	if err := q.AddUsed(d.Mem(), c.Head(), 24); err != nil {
		t.Fatal(err)
	}
	if ok, err := q.PopInto(d.Mem(), &c); !ok || err != nil {
		t.Fatalf("second PopInto = %v, %v", ok, err)
	}
	r, w := contents(t, &c)
	if c.Head() != second || string(r) != "new" || w != 2 || c.ReadableLen() != 3 || c.WritableLen() != 2 {
		t.Errorf("reused chain: head %d (want %d), readable %q, %d writable bytes, lengths %d/%d; want only the new chain's",
			c.Head(), second, r, w, c.ReadableLen(), c.WritableLen())
	}
	if got := d.Written(second); !bytes.Equal(got, []byte{0, 0}) {
		t.Errorf("second chain's writable buffer holds %v", got)
	}
}

// TestQueuePopInto_NothingOrBrokenLeavesChainEmpty: when there is
// nothing to pop, or the next chain is malformed, the chain passed in
// keeps nothing of the one it held.
func TestQueuePopInto_NothingOrBrokenLeavesChainEmpty(t *testing.T) {
	q, d := newQueue(t, 64<<10, 16, 0)
	d.AddChain([][]byte{[]byte("old")}, []int{4})
	var c virtio.Chain
	if ok, err := q.PopInto(d.Mem(), &c); !ok || err != nil {
		t.Fatalf("PopInto = %v, %v", ok, err)
	}
	for _, tc := range []struct {
		name    string
		publish func()
		wantErr bool
	}{
		{"nothing available", func() {}, false},
		{"a looping chain", func() { d.AddLoop(3) }, true},
	} {
		tc.publish()
		ok, err := q.PopInto(d.Mem(), &c)
		if ok || (err != nil) != tc.wantErr {
			t.Errorf("%s: PopInto = %v, %v", tc.name, ok, err)
		}
		if r, w := contents(t, &c); len(r) != 0 || w != 0 || c.ReadableLen() != 0 || c.WritableLen() != 0 || c.Head() != 0 {
			t.Errorf("%s: chain left with head %d, readable %q, %d writable bytes", tc.name, c.Head(), r, w)
		}
	}
}

// TestQueuePopInto_MatchesPop: PopInto and Pop see the same chains,
// direct and indirect, and count them in flight alike.
func TestQueuePopInto_MatchesPop(t *testing.T) {
	q, d := newQueue(t, 64<<10, 16, virtio.FeatureIndirectDesc)
	d.AddChain([][]byte{[]byte("hdr"), []byte("data")}, []int{5})
	d.AddIndirectChain([][]byte{[]byte("ind")}, []int{1, 2})
	var c virtio.Chain
	for i, want := range []struct {
		readable string
		writable uint32
	}{{"hdrdata", 5}, {"ind", 3}} {
		if ok, err := q.PopInto(d.Mem(), &c); !ok || err != nil {
			t.Fatalf("chain %d: PopInto = %v, %v", i, ok, err)
		}
		if r, w := contents(t, &c); string(r) != want.readable || w != want.writable {
			t.Errorf("chain %d: readable %q, %d writable bytes; want %q, %d", i, r, w, want.readable, want.writable)
		}
		if err := q.AddUsed(d.Mem(), c.Head(), 0); err != nil {
			t.Errorf("chain %d: AddUsed: %v", i, err)
		}
	}
	if err := q.AddUsed(d.Mem(), c.Head(), 0); err == nil {
		t.Error("a third AddUsed after two PopInto succeeded")
	}
}

// BenchmarkQueue_RingWork is the ring work of one request with nothing
// else: the driver publishes a three-descriptor chain (header, data,
// status), the device pops and validates it, finds the ring empty (with
// EVENT_IDX, arming avail_event), returns it and asks whether to
// notify, and the driver reaps it.
func BenchmarkQueue_RingWork(b *testing.B) {
	mem, cfg, q := newBlkShapedQueue(b, 64)
	var c virtio.Chain
	var idx uint16
	b.ReportAllocs()
	for b.Loop() {
		// The driver's side, as bench's blk model does it.
		mem.WriteUint16(cfg.AvailRing+guestmem.GuestAddr(virtio.AvailRingOffset+2*uint64(idx%64)), 0)
		idx++
		mem.WriteUint16(cfg.AvailRing+virtio.AvailIdxOffset, idx)
		if ok, err := q.PopInto(mem, &c); !ok || err != nil {
			b.Fatal(ok, err)
		}
		if ok, err := q.PopInto(mem, &c); ok || err != nil {
			b.Fatal(ok, err)
		}
		if err := q.AddUsed(mem, 0, 1); err != nil {
			b.Fatal(err)
		}
		if _, err := q.NeedsNotification(mem); err != nil {
			b.Fatal(err)
		}
		if used, err := mem.ReadUint16(cfg.UsedRing + virtio.UsedIdxOffset); used != idx || err != nil {
			b.Fatal(used, err)
		}
	}
}

// newBlkShapedQueue is an enabled queue of size entries with EVENT_IDX
// whose descriptors 0-2 make a blk read: a 16-byte header, 4 KiB of
// data, a status byte. The driver has made nothing available yet.
func newBlkShapedQueue(b *testing.B, size uint16) (*guestmem.Memory, virtio.Config, *virtio.Queue) {
	mem := guestmem.NewTest(1 << 20)
	d := virtiotest.New(b, mem, size)
	hdr, data, status := d.Alloc(16), d.Alloc(4096), d.Alloc(1)
	d.WriteDesc(0, virtio.Descriptor{Addr: hdr, Len: 16, Flags: virtio.DescFNext, Next: 1})
	d.WriteDesc(1, virtio.Descriptor{Addr: data, Len: 4096, Flags: virtio.DescFWrite | virtio.DescFNext, Next: 2})
	d.WriteDesc(2, virtio.Descriptor{Addr: status, Len: 1, Flags: virtio.DescFWrite})
	cfg := d.Config(virtio.FeatureEventIdx)
	q, err := virtio.NewQueue(size)
	if err != nil {
		b.Fatal(err)
	}
	if err := q.Enable(mem, cfg); err != nil {
		b.Fatal(err)
	}
	return mem, cfg, q
}
