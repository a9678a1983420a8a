package virtiotest_test

import (
	"testing"

	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/virtio"
	"github.com/vmm-dev/vmm/virtio/virtiotest"
)

// TestNew_LayoutEnables: the layout the fake driver picks is one a device
// accepts, for every queue size.
func TestNew_LayoutEnables(t *testing.T) {
	for size := uint16(1); size != 0 && size <= virtio.MaxQueueSize; size <<= 1 {
		mem := guestmem.NewTest(2 << 20)
		d := virtiotest.New(t, mem, size)
		q, err := virtio.NewQueue(size)
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Enable(mem, d.Config(virtio.QueueFeatures)); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
	}
}

// TestAddChain_PublishesInOrder: AddChain fills ring entries in order and
// bumps avail.idx; descriptor slots are handed out consecutively.
func TestAddChain_PublishesInOrder(t *testing.T) {
	mem := guestmem.NewTest(64 << 10)
	d := virtiotest.New(t, mem, 4)
	h0 := d.AddChain([][]byte{{1}}, []int{1}) // slots 0, 1
	h1 := d.AddChain(nil, []int{1})           // slot 2
	if h0 != 0 || h1 != 2 {
		t.Fatalf("heads %d, %d; want 0, 2", h0, h1)
	}
	cfg := d.Config(0)
	idx, _ := mem.ReadUint16(cfg.AvailRing + virtio.AvailIdxOffset)
	e1, _ := mem.ReadUint16(cfg.AvailRing + virtio.AvailRingOffset + virtio.AvailEntrySize)
	if idx != 2 || e1 != 2 {
		t.Fatalf("avail.idx %d, ring[1] %d; want 2, 2", idx, e1)
	}
	if u := d.Used(); len(u) != 0 {
		t.Fatalf("used ring not empty: %+v", u)
	}
}
