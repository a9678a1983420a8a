package virtio

import (
	"encoding/binary"

	"github.com/vmm-dev/vmm/guestmem"
)

// Split virtqueue layout (virtio 1.2 §2.7). All fields are little-endian.
const (
	// MaxQueueSize is the largest Queue Size the spec allows (§2.6).
	MaxQueueSize = 32768

	// DescSize is sizeof(struct virtq_desc) (§2.7.5).
	DescSize = 16
	// Offsets inside struct virtq_desc.
	DescAddrOffset  = 0  // le64 addr
	DescLenOffset   = 8  // le32 len
	DescFlagsOffset = 12 // le16 flags
	DescNextOffset  = 14 // le16 next

	// Offsets inside struct virtq_avail (§2.7.6).
	AvailFlagsOffset = 0 // le16 flags
	AvailIdxOffset   = 2 // le16 idx
	AvailRingOffset  = 4 // le16 ring[Queue Size], then le16 used_event
	AvailEntrySize   = 2

	// Offsets inside struct virtq_used (§2.7.8).
	UsedFlagsOffset = 0 // le16 flags
	UsedIdxOffset   = 2 // le16 idx
	UsedRingOffset  = 4 // struct virtq_used_elem ring[Queue Size], then le16 avail_event
	// UsedElemSize is sizeof(struct virtq_used_elem): le32 id, le32 len.
	UsedElemSize      = 8
	UsedElemIDOffset  = 0
	UsedElemLenOffset = 4

	// Alignment of each part (§2.7, the table under "Virtqueue Part").
	DescTableAlign = 16
	AvailRingAlign = 2
	UsedRingAlign  = 4
)

// Descriptor flags (§2.7.5).
const (
	// DescFNext: the buffer continues in the descriptor named by next.
	// VIRTQ_DESC_F_NEXT.
	DescFNext uint16 = 1
	// DescFWrite: the buffer is device write-only (otherwise read-only).
	// VIRTQ_DESC_F_WRITE.
	DescFWrite uint16 = 2
	// DescFIndirect: the buffer holds a table of descriptors (§2.7.5.3).
	// VIRTQ_DESC_F_INDIRECT.
	DescFIndirect uint16 = 4
)

// Ring flags.
const (
	// AvailFNoInterrupt: the driver asks for no used-buffer notifications
	// (§2.7.7). VIRTQ_AVAIL_F_NO_INTERRUPT.
	AvailFNoInterrupt uint16 = 1
	// UsedFNoNotify: the device asks for no available-buffer
	// notifications (§2.7.10). VIRTQ_USED_F_NO_NOTIFY.
	UsedFNoNotify uint16 = 1
)

// Descriptor is one struct virtq_desc as the driver wrote it. Its
// encoding/binary form is the 16-byte wire layout, so tests can store it
// with guestmem.Memory.WriteObj.
type Descriptor struct {
	Addr  guestmem.GuestAddr
	Len   uint32
	Flags uint16
	Next  uint16
}

// decodeDescriptor decodes a descriptor from its DescSize-byte wire form.
func decodeDescriptor(b *[DescSize]byte) Descriptor {
	return Descriptor{
		Addr:  guestmem.GuestAddr(binary.LittleEndian.Uint64(b[DescAddrOffset:])),
		Len:   binary.LittleEndian.Uint32(b[DescLenOffset:]),
		Flags: binary.LittleEndian.Uint16(b[DescFlagsOffset:]),
		Next:  binary.LittleEndian.Uint16(b[DescNextOffset:]),
	}
}

// DescTableSize is the size in bytes of a descriptor table for a queue of
// the given size.
func DescTableSize(size uint16) uint64 { return DescSize * uint64(size) }

// AvailRingSize is the size in bytes of the available ring, used_event
// included (§2.7: 6 + 2 * Queue Size).
func AvailRingSize(size uint16) uint64 { return AvailRingOffset + AvailEntrySize*uint64(size) + 2 }

// UsedRingSize is the size in bytes of the used ring, avail_event included
// (§2.7: 6 + 8 * Queue Size).
func UsedRingSize(size uint16) uint64 { return UsedRingOffset + UsedElemSize*uint64(size) + 2 }

// UsedEventOffset is the offset of used_event in the available ring.
func UsedEventOffset(size uint16) uint64 { return AvailRingOffset + AvailEntrySize*uint64(size) }

// AvailEventOffset is the offset of avail_event in the used ring.
func AvailEventOffset(size uint16) uint64 { return UsedRingOffset + UsedElemSize*uint64(size) }

// needEvent is vring_need_event from the spec's virtio_queue.h: whether
// moving an index from old to new crossed event, i.e. event is in
// [old, new) modulo 2^16. All arithmetic wraps in uint16 on purpose.
func needEvent(event, newIdx, old uint16) bool {
	return newIdx-event-1 < newIdx-old
}
