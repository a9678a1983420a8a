package virtio_test

import (
	"errors"
	"testing"

	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/virtio"
	"github.com/vmm-dev/vmm/virtio/virtiotest"
)

// newQueue returns an enabled queue of the given size and the fake driver
// behind it, in memSize bytes of test memory.
func newQueue(t *testing.T, memSize uint64, size uint16, features uint64) (*virtio.Queue, *virtiotest.Driver) {
	t.Helper()
	mem := guestmem.NewTest(memSize)
	d := virtiotest.New(t, mem, size)
	q, err := virtio.NewQueue(size)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Enable(mem, d.Config(features)); err != nil {
		t.Fatal(err)
	}
	return q, d
}

func mustPop(t *testing.T, q *virtio.Queue, d *virtiotest.Driver) *virtio.Chain {
	t.Helper()
	c, err := q.Pop(d.Mem())
	if err != nil {
		t.Fatalf("Pop: %v", err)
	}
	if c == nil {
		t.Fatal("Pop: no chain available")
	}
	return c
}

func TestNewQueue_RejectsBadMaximum(t *testing.T) {
	for _, max := range []uint16{0, 3, 100, 65535} {
		if _, err := virtio.NewQueue(max); !errors.Is(err, virtio.ErrQueueSize) {
			t.Errorf("NewQueue(%d) = %v, want ErrQueueSize", max, err)
		}
	}
	for _, max := range []uint16{1, 256, virtio.MaxQueueSize} {
		if _, err := virtio.NewQueue(max); err != nil {
			t.Errorf("NewQueue(%d): %v", max, err)
		}
	}
}

func TestQueueEnable_ValidatesConfig(t *testing.T) {
	const memSize = 64 << 10
	good := virtio.Config{Size: 16, DescTable: 0x1000, AvailRing: 0x2000, UsedRing: 0x3000}
	end := guestmem.GuestAddr(memSize)
	tests := []struct {
		name string
		edit func(c *virtio.Config)
		want error
	}{
		{"size zero", func(c *virtio.Config) { c.Size = 0 }, virtio.ErrQueueSize},
		{"size not a power of two", func(c *virtio.Config) { c.Size = 12 }, virtio.ErrQueueSize},
		{"size above maximum", func(c *virtio.Config) { c.Size = 64 }, virtio.ErrQueueSize},
		{"descriptor table misaligned", func(c *virtio.Config) { c.DescTable = 0x1008 }, virtio.ErrRingAlignment},
		{"available ring misaligned", func(c *virtio.Config) { c.AvailRing = 0x2001 }, virtio.ErrRingAlignment},
		{"used ring misaligned", func(c *virtio.Config) { c.UsedRing = 0x3002 }, virtio.ErrRingAlignment},
		{"descriptor table past memory", func(c *virtio.Config) { c.DescTable = end - 0x80 }, virtio.ErrRingOutOfMemory},
		{"available ring past memory", func(c *virtio.Config) { c.AvailRing = end - 0x20 }, virtio.ErrRingOutOfMemory},
		{"used ring past memory", func(c *virtio.Config) { c.UsedRing = end - 0x80 }, virtio.ErrRingOutOfMemory},
		{"used ring wraps the address space", func(c *virtio.Config) { c.UsedRing = ^guestmem.GuestAddr(3) }, virtio.ErrRingOutOfMemory},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := guestmem.NewTest(memSize)
			q, _ := virtio.NewQueue(32)
			c := good
			tt.edit(&c)
			err := q.Enable(mem, c)
			if !errors.Is(err, tt.want) || !errors.Is(err, virtio.ErrBadConfig) {
				t.Fatalf("Enable = %v, want %v and ErrBadConfig", err, tt.want)
			}
			if q.Ready() {
				t.Fatal("queue ready after a refused Enable")
			}
		})
	}
}

func TestQueueEnable_Twice_Refused(t *testing.T) {
	q, d := newQueue(t, 64<<10, 8, 0)
	if err := q.Enable(d.Mem(), d.Config(0)); !errors.Is(err, virtio.ErrBadConfig) {
		t.Fatalf("second Enable = %v, want ErrBadConfig", err)
	}
}

func TestQueueEnable_KeepsOnlyQueueFeatures(t *testing.T) {
	all := virtio.FeatureVersion1 | virtio.FeatureEventIdx | virtio.FeatureIndirectDesc | virtio.FeatureRingPacked
	q, _ := newQueue(t, 64<<10, 8, all)
	if got := q.Config().Features; got != virtio.QueueFeatures {
		t.Fatalf("Features = %#x, want %#x", got, virtio.QueueFeatures)
	}
}

func TestQueue_NotReady(t *testing.T) {
	q, _ := virtio.NewQueue(8)
	mem := guestmem.NewTest(4096)
	if _, err := q.Pop(mem); !errors.Is(err, virtio.ErrNotReady) {
		t.Errorf("Pop = %v, want ErrNotReady", err)
	}
	if err := q.AddUsed(mem, 0, 0); !errors.Is(err, virtio.ErrNotReady) {
		t.Errorf("AddUsed = %v, want ErrNotReady", err)
	}
	if _, err := q.NeedsNotification(mem); !errors.Is(err, virtio.ErrNotReady) {
		t.Errorf("NeedsNotification = %v, want ErrNotReady", err)
	}
}

func TestQueuePop_EmptyReturnsNil(t *testing.T) {
	q, d := newQueue(t, 64<<10, 8, 0)
	c, err := q.Pop(d.Mem())
	if c != nil || err != nil {
		t.Fatalf("Pop = %v, %v, want nil, nil", c, err)
	}
}

func TestQueueAddUsed_WritesUsedRingInCompletionOrder(t *testing.T) {
	q, d := newQueue(t, 64<<10, 8, 0)
	heads := []uint16{
		d.AddChain([][]byte{[]byte("a")}, []int{4}),
		d.AddChain(nil, []int{8, 8}),
		d.AddChain([][]byte{[]byte("b")}, nil),
	}
	for i, want := range heads {
		if c := mustPop(t, q, d); c.Head() != want {
			t.Fatalf("chain %d: head %d, want %d", i, c.Head(), want)
		}
	}
	// Complete out of order, as a device with parallel requests may.
	done := []virtiotest.UsedElem{{ID: uint32(heads[2]), Len: 0}, {ID: uint32(heads[0]), Len: 4}, {ID: uint32(heads[1]), Len: 11}}
	for _, e := range done {
		if err := q.AddUsed(d.Mem(), uint16(e.ID), e.Len); err != nil {
			t.Fatal(err)
		}
	}
	got := d.Used()
	if len(got) != len(done) {
		t.Fatalf("used ring has %d entries, want %d", len(got), len(done))
	}
	for i := range done {
		if got[i] != done[i] {
			t.Errorf("used[%d] = %+v, want %+v", i, got[i], done[i])
		}
	}
	if d.UsedIdx() != 3 {
		t.Errorf("used.idx = %d, want 3", d.UsedIdx())
	}
}

func TestQueueAddUsed_RejectsDeviceMistakes(t *testing.T) {
	q, d := newQueue(t, 64<<10, 8, 0)
	if err := q.AddUsed(d.Mem(), 0, 0); !errors.Is(err, virtio.ErrNothingInFlight) {
		t.Errorf("AddUsed with nothing popped = %v, want ErrNothingInFlight", err)
	}
	d.AddChain([][]byte{{1}}, nil)
	mustPop(t, q, d)
	if err := q.AddUsed(d.Mem(), 8, 0); !errors.Is(err, virtio.ErrUsedHeadOutOfRange) {
		t.Errorf("AddUsed(head 8) = %v, want ErrUsedHeadOutOfRange", err)
	}
	if q.Err() != nil {
		t.Errorf("a device mistake broke the queue: %v", q.Err())
	}
}

// A batch is published with one used.idx update covering all of it, and a
// batch with a bad element publishes nothing.
func TestQueueAddUsedBatch_PublishesTogether(t *testing.T) {
	q, d := newQueue(t, 64<<10, 8, 0)
	var heads []uint16
	for range 3 {
		heads = append(heads, d.AddChain(nil, []int{16}))
		mustPop(t, q, d)
	}
	bad := []virtio.UsedElem{{Head: heads[0], Written: 1}, {Head: 8}}
	if err := q.AddUsedBatch(d.Mem(), bad); !errors.Is(err, virtio.ErrUsedHeadOutOfRange) {
		t.Errorf("batch with head 8 = %v, want ErrUsedHeadOutOfRange", err)
	}
	four := []virtio.UsedElem{{Head: heads[0]}, {Head: heads[1]}, {Head: heads[2]}, {Head: heads[0]}}
	if err := q.AddUsedBatch(d.Mem(), four); !errors.Is(err, virtio.ErrNothingInFlight) {
		t.Errorf("batch of 4 with 3 in flight = %v, want ErrNothingInFlight", err)
	}
	if d.UsedIdx() != 0 {
		t.Fatalf("used.idx = %d after refused batches, want 0", d.UsedIdx())
	}
	batch := []virtio.UsedElem{{Head: heads[1], Written: 16}, {Head: heads[0], Written: 7}, {Head: heads[2], Written: 0}}
	if err := q.AddUsedBatch(d.Mem(), batch); err != nil {
		t.Fatal(err)
	}
	if d.UsedIdx() != 3 {
		t.Errorf("used.idx = %d, want 3", d.UsedIdx())
	}
	for i, e := range d.Used() {
		if e.ID != uint32(batch[i].Head) || e.Len != batch[i].Written {
			t.Errorf("used[%d] = %+v, want %+v", i, e, batch[i])
		}
	}
	if err := q.AddUsed(d.Mem(), heads[0], 0); !errors.Is(err, virtio.ErrNothingInFlight) {
		t.Errorf("AddUsed after the batch returned everything = %v, want ErrNothingInFlight", err)
	}
}

// TestQueue_IndicesWrap runs more than 2^16 chains through a small queue so
// both free-running indices wrap.
func TestQueue_IndicesWrap(t *testing.T) {
	q, d := newQueue(t, 64<<10, 4, 0)
	buf := d.Put([]byte{0x5a})
	d.WriteDesc(2, virtio.Descriptor{Addr: buf, Len: 1})
	for i := range 70000 {
		d.Publish(2)
		c := mustPop(t, q, d)
		if c.Head() != 2 || c.ReadableLen() != 1 {
			t.Fatalf("iteration %d: head %d, %d readable bytes", i, c.Head(), c.ReadableLen())
		}
		if err := q.AddUsed(d.Mem(), 2, uint32(i)); err != nil {
			t.Fatalf("iteration %d: %v", i, err)
		}
		if u := d.Used(); len(u) != 1 || u[0] != (virtiotest.UsedElem{ID: 2, Len: uint32(i)}) {
			t.Fatalf("iteration %d: used %+v", i, u)
		}
	}
	if got, want := d.UsedIdx(), uint16(70000%65536); got != want {
		t.Fatalf("used.idx = %d, want %d", got, want)
	}
}

func TestQueuePop_AvailIdxJump_NeedsReset(t *testing.T) {
	tests := []struct {
		name  string
		start uint16 // chains pushed through first, to move the indices
		jump  uint16 // avail.idx - device position
		ok    bool
	}{
		{"exactly queue size", 0, 8, true},
		{"one past queue size", 0, 9, false},
		{"half the index space", 0, 0x8000, false},
		{"driver moved idx backwards", 3, 0xffff, false},
		{"past size across the wrap", 65530, 9, false},
		{"queue size across the wrap", 65530, 8, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, d := newQueue(t, 64<<10, 8, 0)
			d.WriteDesc(0, virtio.Descriptor{Addr: d.Put([]byte{1}), Len: 1})
			for range tt.start {
				d.Publish(0)
				mustPop(t, q, d)
				if err := q.AddUsed(d.Mem(), 0, 0); err != nil {
					t.Fatal(err)
				}
			}
			d.SetAvailIdx(tt.start + tt.jump)
			_, err := q.Pop(d.Mem())
			if tt.ok {
				if err != nil {
					t.Fatalf("Pop: %v", err)
				}
				return
			}
			if !errors.Is(err, virtio.ErrAvailIdxJump) || !errors.Is(err, virtio.ErrNeedsReset) {
				t.Fatalf("Pop = %v, want ErrAvailIdxJump and ErrNeedsReset", err)
			}
		})
	}
}

// TestQueuePop_AvailIdxReadOncePerBatch: Pop takes the entries one read
// of avail.idx showed without reading it again, and checks it when it
// reads it next, once they are taken; a jump is refused then.
func TestQueuePop_AvailIdxReadOncePerBatch(t *testing.T) {
	q, d := newQueue(t, 64<<10, 8, 0)
	first := d.AddChain([][]byte{{1}}, nil)
	second := d.AddChain([][]byte{{2}}, nil)
	if c := mustPop(t, q, d); c.Head() != first {
		t.Fatalf("first Pop: head %d, want %d", c.Head(), first)
	}
	d.SetAvailIdx(100) // after the device read 2
	if c := mustPop(t, q, d); c.Head() != second {
		t.Fatalf("second Pop: head %d, want %d", c.Head(), second)
	}
	if _, err := q.Pop(d.Mem()); !errors.Is(err, virtio.ErrAvailIdxJump) || !errors.Is(err, virtio.ErrNeedsReset) {
		t.Fatalf("third Pop = %v, want ErrAvailIdxJump and ErrNeedsReset", err)
	}
}

func TestQueue_BrokenIsStickyUntilReset(t *testing.T) {
	q, d := newQueue(t, 64<<10, 8, 0)
	d.AddChain([][]byte{{1}}, nil)
	mustPop(t, q, d)
	d.SetAvailIdx(100)
	_, first := q.Pop(d.Mem())
	if first == nil {
		t.Fatal("Pop accepted an avail.idx jump")
	}
	d.SetAvailIdx(1)
	if _, err := q.Pop(d.Mem()); err != first {
		t.Errorf("Pop after breaking = %v, want the first error again", err)
	}
	if err := q.AddUsed(d.Mem(), 0, 0); err != first {
		t.Errorf("AddUsed after breaking = %v, want the first error again", err)
	}
	if _, err := q.NeedsNotification(d.Mem()); err != first {
		t.Errorf("NeedsNotification after breaking = %v, want the first error again", err)
	}
	q.Reset()
	if q.Ready() || q.Err() != nil {
		t.Fatalf("after Reset: ready %v, err %v", q.Ready(), q.Err())
	}
	mem := guestmem.NewTest(64 << 10)
	d = virtiotest.New(t, mem, 8)
	if err := q.Enable(mem, d.Config(0)); err != nil {
		t.Fatal(err)
	}
	d.AddChain([][]byte{{1}}, nil)
	mustPop(t, q, d)
}
