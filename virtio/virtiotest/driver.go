// Package virtiotest is a fake virtio driver for tests: it lays out a split
// virtqueue's descriptor table and rings in a guestmem.Memory, offers
// descriptor chains to the device the way a guest driver would, reads back
// the used ring, and crafts the hostile rings a device must survive.
package virtiotest

import (
	"testing"

	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/virtio"
)

// UsedElem is one struct virtq_used_elem the device returned.
type UsedElem struct {
	ID  uint32 // head of the chain
	Len uint32 // bytes the device wrote
}

// buffer is one buffer the driver handed out, for reading back.
type buffer struct {
	addr guestmem.GuestAddr
	len  uint32
}

// Driver is the guest side of one split virtqueue. Descriptor slots are
// handed out round-robin, so a test must let the device consume chains
// before it offers more than Queue Size descriptors' worth. Every failure
// of the driver itself (out of test memory) fails the test.
type Driver struct {
	tb   testing.TB
	mem  *guestmem.Memory
	size uint16

	desc, avail, used guestmem.GuestAddr
	heap, heapEnd     guestmem.GuestAddr // bump allocator for buffers and tables

	nextDesc uint16 // next descriptor slot to hand out
	availIdx uint16 // avail.idx as last published
	usedSeen uint16 // used.idx up to which Used has reported

	writable map[uint16][]buffer // per head, the chain's writable buffers
}

// New lays out a queue of the given size at the start of mem's first
// region: descriptor table, available ring, used ring, each aligned as
// §2.7 asks; the rest of the region is the driver's heap.
func New(tb testing.TB, mem *guestmem.Memory, size uint16) *Driver {
	tb.Helper()
	r := mem.Regions()[0]
	d := &Driver{tb: tb, mem: mem, size: size, writable: map[uint16][]buffer{}}
	d.desc = alignUp(r.Start, virtio.DescTableAlign)
	d.avail = alignUp(d.desc+guestmem.GuestAddr(virtio.DescTableSize(size)), virtio.AvailRingAlign)
	d.used = alignUp(d.avail+guestmem.GuestAddr(virtio.AvailRingSize(size)), virtio.UsedRingAlign)
	d.heap = alignUp(d.used+guestmem.GuestAddr(virtio.UsedRingSize(size)), 64)
	d.heapEnd = r.End()
	if d.heap > d.heapEnd {
		tb.Fatalf("virtiotest: a %d-entry queue does not fit in %d bytes", size, r.Size)
	}
	return d
}

func alignUp(a guestmem.GuestAddr, n uint64) guestmem.GuestAddr {
	return guestmem.GuestAddr((uint64(a) + n - 1) &^ (n - 1))
}

// Config is the queue configuration a driver would program, with the
// given negotiated features.
func (d *Driver) Config(features uint64) virtio.Config {
	return virtio.Config{Size: d.size, DescTable: d.desc, AvailRing: d.avail, UsedRing: d.used, Features: features}
}

// Mem is the guest memory the driver works in.
func (d *Driver) Mem() *guestmem.Memory { return d.mem }

// Size is the queue size.
func (d *Driver) Size() uint16 { return d.size }

// Alloc returns the address of n fresh bytes of heap, 16-byte aligned
// (enough for an indirect table), zeroed.
func (d *Driver) Alloc(n uint64) guestmem.GuestAddr {
	d.tb.Helper()
	a := alignUp(d.heap, 16)
	end, ok := a.Add(n)
	if !ok || end > d.heapEnd {
		d.tb.Fatalf("virtiotest: out of heap allocating %d bytes", n)
	}
	d.heap = end
	d.write(a, make([]byte, n))
	return a
}

// Put copies b into fresh heap and returns its address.
func (d *Driver) Put(b []byte) guestmem.GuestAddr {
	d.tb.Helper()
	a := d.Alloc(uint64(len(b)))
	d.write(a, b)
	return a
}

func (d *Driver) write(a guestmem.GuestAddr, b []byte) {
	d.tb.Helper()
	if err := d.mem.WriteAt(b, a); err != nil {
		d.tb.Fatalf("virtiotest: %v", err)
	}
}

func (d *Driver) writeU16(a guestmem.GuestAddr, v uint16) {
	d.tb.Helper()
	if err := d.mem.WriteUint16(a, v); err != nil {
		d.tb.Fatalf("virtiotest: %v", err)
	}
}

func (d *Driver) readU16(a guestmem.GuestAddr) uint16 {
	d.tb.Helper()
	v, err := d.mem.ReadUint16(a)
	if err != nil {
		d.tb.Fatalf("virtiotest: %v", err)
	}
	return v
}

// buffers turns readable contents and writable lengths into descriptors
// (without NEXT) and records the writable buffers.
func (d *Driver) buffers(readable [][]byte, writableLens []int) ([]virtio.Descriptor, []buffer) {
	d.tb.Helper()
	var descs []virtio.Descriptor
	var wr []buffer
	for _, b := range readable {
		descs = append(descs, virtio.Descriptor{Addr: d.Put(b), Len: uint32(len(b))})
	}
	for _, n := range writableLens {
		b := buffer{addr: d.Alloc(uint64(n)), len: uint32(n)}
		wr = append(wr, b)
		descs = append(descs, virtio.Descriptor{Addr: b.addr, Len: b.len, Flags: virtio.DescFWrite})
	}
	return descs, wr
}

// AddChain offers a chain of one device-readable descriptor per readable
// slice (holding a copy of it) followed by one device-writable descriptor
// per writable length, and publishes it. It returns the chain's head.
func (d *Driver) AddChain(readable [][]byte, writableLens []int) uint16 {
	d.tb.Helper()
	descs, wr := d.buffers(readable, writableLens)
	head := d.AddDescs(descs)
	d.writable[head] = wr
	d.Publish(head)
	return head
}

// AddIndirectChain is AddChain with the descriptors in an indirect table
// (§2.7.5.3) named by a single descriptor in the queue's table.
func (d *Driver) AddIndirectChain(readable [][]byte, writableLens []int) uint16 {
	d.tb.Helper()
	descs, wr := d.buffers(readable, writableLens)
	table := d.PutTable(link(descs, 0))
	head := d.AddDescs([]virtio.Descriptor{{Addr: table, Len: uint32(len(descs)) * virtio.DescSize, Flags: virtio.DescFIndirect}})
	d.writable[head] = wr
	d.Publish(head)
	return head
}

// link sets NEXT on every descriptor but the last, each pointing at the
// following index, the first being at index first.
func link(descs []virtio.Descriptor, first uint16) []virtio.Descriptor {
	out := append([]virtio.Descriptor(nil), descs...)
	for i := range out {
		if i < len(out)-1 {
			out[i].Flags |= virtio.DescFNext
			out[i].Next = first + uint16(i) + 1
		}
	}
	return out
}

// PutTable writes descs, as they are, to a fresh indirect table and returns
// its address.
func (d *Driver) PutTable(descs []virtio.Descriptor) guestmem.GuestAddr {
	d.tb.Helper()
	a := d.Alloc(uint64(len(descs)) * virtio.DescSize)
	for i, desc := range descs {
		if err := d.mem.WriteObj(a+guestmem.GuestAddr(i*virtio.DescSize), desc); err != nil {
			d.tb.Fatalf("virtiotest: %v", err)
		}
	}
	return a
}

// AddDescs writes descs into consecutive free slots of the descriptor
// table (wrapping), linked with NEXT in order, and returns the first slot.
// It does not publish the chain.
func (d *Driver) AddDescs(descs []virtio.Descriptor) uint16 {
	d.tb.Helper()
	head := d.nextDesc
	for i, desc := range descs {
		slot := d.nextDesc
		d.nextDesc = (d.nextDesc + 1) % d.size
		if i < len(descs)-1 {
			desc.Flags |= virtio.DescFNext
			desc.Next = d.nextDesc
		}
		d.WriteDesc(slot, desc)
	}
	return head
}

// WriteDesc writes desc verbatim into slot idx of the descriptor table.
func (d *Driver) WriteDesc(idx uint16, desc virtio.Descriptor) {
	d.tb.Helper()
	if idx >= d.size {
		d.tb.Fatalf("virtiotest: descriptor slot %d outside a %d-entry table", idx, d.size)
	}
	if err := d.mem.WriteObj(d.desc+guestmem.GuestAddr(uint64(idx)*virtio.DescSize), desc); err != nil {
		d.tb.Fatalf("virtiotest: %v", err)
	}
}

// Publish puts head in the next available ring entry and then bumps
// avail.idx, as §2.7.13 orders it. No notification is needed: the tests
// call Pop.
func (d *Driver) Publish(head uint16) {
	d.tb.Helper()
	slot := uint64(d.availIdx % d.size)
	d.writeU16(d.avail+guestmem.GuestAddr(virtio.AvailRingOffset+virtio.AvailEntrySize*slot), head)
	d.availIdx++
	d.writeU16(d.avail+virtio.AvailIdxOffset, d.availIdx)
}

// SetAvailIdx writes avail.idx directly, e.g. to jump it past Queue Size.
func (d *Driver) SetAvailIdx(idx uint16) {
	d.tb.Helper()
	d.availIdx = idx
	d.writeU16(d.avail+virtio.AvailIdxOffset, idx)
}

// SetAvailFlags writes avail.flags (VIRTQ_AVAIL_F_NO_INTERRUPT).
func (d *Driver) SetAvailFlags(flags uint16) {
	d.tb.Helper()
	d.writeU16(d.avail+virtio.AvailFlagsOffset, flags)
}

// SetUsedEvent writes used_event, the trailing field of the available ring.
func (d *Driver) SetUsedEvent(v uint16) {
	d.tb.Helper()
	d.writeU16(d.avail+guestmem.GuestAddr(virtio.UsedEventOffset(d.size)), v)
}

// AvailEvent reads avail_event, the trailing field of the used ring.
func (d *Driver) AvailEvent() uint16 {
	d.tb.Helper()
	return d.readU16(d.used + guestmem.GuestAddr(virtio.AvailEventOffset(d.size)))
}

// UsedIdx reads used.idx.
func (d *Driver) UsedIdx() uint16 {
	d.tb.Helper()
	return d.readU16(d.used + virtio.UsedIdxOffset)
}

// Used returns the used ring entries the device added since the last call,
// in order. It fails the test if the device ran more than Queue Size
// entries ahead, which would have overwritten some.
func (d *Driver) Used() []UsedElem {
	d.tb.Helper()
	idx := d.UsedIdx()
	if n := idx - d.usedSeen; n > d.size {
		d.tb.Fatalf("virtiotest: used.idx %d is %d entries past %d, more than the queue size", idx, n, d.usedSeen)
	}
	var out []UsedElem
	for ; d.usedSeen != idx; d.usedSeen++ {
		slot := uint64(d.usedSeen % d.size)
		a := d.used + guestmem.GuestAddr(virtio.UsedRingOffset+virtio.UsedElemSize*slot)
		var e UsedElem
		if err := d.mem.ReadObj(a, &e); err != nil {
			d.tb.Fatalf("virtiotest: %v", err)
		}
		out = append(out, e)
	}
	return out
}

// Written returns the contents of the writable buffers of the chain that
// AddChain or AddIndirectChain returned as head, concatenated.
func (d *Driver) Written(head uint16) []byte {
	d.tb.Helper()
	var out []byte
	for _, b := range d.writable[head] {
		p := make([]byte, b.len)
		if err := d.mem.ReadAt(p, b.addr); err != nil {
			d.tb.Fatalf("virtiotest: %v", err)
		}
		out = append(out, p...)
	}
	return out
}
