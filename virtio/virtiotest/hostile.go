package virtiotest

import (
	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/virtio"
)

// Helpers that publish chains breaking one rule of §2.7.5 each, as a
// hostile or buggy driver would. Each returns the chain's head.

// AddRaw publishes descs verbatim in consecutive slots, NEXT and next
// fields included, and returns the first slot, which is the head.
func (d *Driver) AddRaw(descs []virtio.Descriptor) uint16 {
	d.tb.Helper()
	head := d.nextDesc
	for _, desc := range descs {
		d.WriteDesc(d.nextDesc, desc)
		d.nextDesc = (d.nextDesc + 1) % d.size
	}
	d.Publish(head)
	return head
}

// AddBuffer publishes a one-descriptor chain naming [addr, addr+n) with the
// given flags: an address outside memory, a huge length, or with
// DescFIndirect an indirect table of any shape.
func (d *Driver) AddBuffer(addr guestmem.GuestAddr, n uint32, flags uint16) uint16 {
	d.tb.Helper()
	return d.AddRaw([]virtio.Descriptor{{Addr: addr, Len: n, Flags: flags}})
}

// AddLoop publishes n readable descriptors whose last links back to the
// first. n == 1 is a descriptor that names itself.
func (d *Driver) AddLoop(n int) uint16 {
	d.tb.Helper()
	buf := d.Alloc(1)
	head := d.nextDesc
	descs := make([]virtio.Descriptor, n)
	for i := range descs {
		next := (head + uint16(i) + 1) % d.size
		if i == n-1 {
			next = head
		}
		descs[i] = virtio.Descriptor{Addr: buf, Len: 1, Flags: virtio.DescFNext, Next: next}
	}
	return d.AddRaw(descs)
}

// AddNextOutOfRange publishes a descriptor whose next is Queue Size.
func (d *Driver) AddNextOutOfRange() uint16 {
	d.tb.Helper()
	return d.AddRaw([]virtio.Descriptor{{Addr: d.Alloc(1), Len: 1, Flags: virtio.DescFNext, Next: d.size}})
}

// AddWritableBeforeReadable publishes a writable descriptor followed by a
// readable one.
func (d *Driver) AddWritableBeforeReadable() uint16 {
	d.tb.Helper()
	w := virtio.Descriptor{Addr: d.Alloc(8), Len: 8, Flags: virtio.DescFWrite}
	r := virtio.Descriptor{Addr: d.Alloc(8), Len: 8}
	head := d.AddDescs([]virtio.Descriptor{w, r})
	d.Publish(head)
	return head
}

// AddRepeated publishes a chain of n descriptors that all name the same
// buffer [addr, addr+n) with the given flags: with a large buffer, a chain
// whose total length passes 2^32 without leaving guest memory.
func (d *Driver) AddRepeated(count int, addr guestmem.GuestAddr, n uint32, flags uint16) uint16 {
	d.tb.Helper()
	descs := make([]virtio.Descriptor, count)
	for i := range descs {
		descs[i] = virtio.Descriptor{Addr: addr, Len: n, Flags: flags}
	}
	head := d.AddDescs(descs)
	d.Publish(head)
	return head
}

// AddIndirect publishes one descriptor naming an indirect table that holds
// descs verbatim (NEXT and next included); flags are added to
// DescFIndirect on the queue's descriptor.
func (d *Driver) AddIndirect(descs []virtio.Descriptor, flags uint16) uint16 {
	d.tb.Helper()
	table := d.PutTable(descs)
	return d.AddBuffer(table, uint32(len(descs))*virtio.DescSize, virtio.DescFIndirect|flags)
}

// AddNestedIndirect publishes an indirect table whose only entry names
// another (valid) indirect table.
func (d *Driver) AddNestedIndirect() uint16 {
	d.tb.Helper()
	inner := d.PutTable([]virtio.Descriptor{{Addr: d.Alloc(8), Len: 8}})
	return d.AddIndirect([]virtio.Descriptor{{Addr: inner, Len: virtio.DescSize, Flags: virtio.DescFIndirect}}, 0)
}

// AddIndirectLoop publishes an indirect table of n entries whose last
// links back to the first.
func (d *Driver) AddIndirectLoop(n int) uint16 {
	d.tb.Helper()
	buf := d.Alloc(1)
	descs := make([]virtio.Descriptor, n)
	for i := range descs {
		descs[i] = virtio.Descriptor{Addr: buf, Len: 1, Flags: virtio.DescFNext, Next: uint16((i + 1) % n)}
	}
	return d.AddIndirect(descs, 0)
}

// AddIndirectNextOutOfRange publishes an indirect table of two entries
// whose first links to entry 2, past the table's end.
func (d *Driver) AddIndirectNextOutOfRange() uint16 {
	d.tb.Helper()
	buf := d.Alloc(1)
	return d.AddIndirect([]virtio.Descriptor{
		{Addr: buf, Len: 1, Flags: virtio.DescFNext, Next: 2},
		{Addr: buf, Len: 1},
	}, 0)
}
