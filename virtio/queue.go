package virtio

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"github.com/vmm-dev/vmm/guestmem"
)

// Config is what the driver programs into a virtqueue before enabling it:
// queue_size, queue_desc, queue_driver and queue_device in the PCI common
// configuration (§4.1.4.3), plus the features both sides negotiated.
type Config struct {
	Size      uint16             // Queue Size: a power of two, at most the device maximum
	DescTable guestmem.GuestAddr // descriptor area (§2.7.5)
	AvailRing guestmem.GuestAddr // driver area (§2.7.6)
	UsedRing  guestmem.GuestAddr // device area (§2.7.8)
	Features  uint64             // negotiated feature bits; only QueueFeatures matter
}

// Queue is the device side of one split virtqueue (§2.7). It is not safe
// for concurrent use: one device goroutine processes it, and the transport
// serialises Enable and Reset with that goroutine.
//
// Once the driver breaks a rule, the queue stops: Pop, AddUsed and
// NeedsNotification return the same error (it unwraps to ErrNeedsReset)
// until Reset.
type Queue struct {
	maxSize uint16
	cfg     Config
	ready   bool

	nextAvail uint16 // next available ring entry to read (last_avail_idx)
	nextUsed  uint16 // next used ring entry; also the used.idx published
	signalled uint16 // used.idx at the last NeedsNotification
	inFlight  uint32 // chains popped and not yet returned by AddUsed
	broken    error

	// availAhead is how many entries past nextAvail the driver had made
	// available at the last read of avail.idx, which was checked and
	// followed by a read barrier: Pop takes them without reading idx
	// again (QEMU's shadow_avail_idx, vhost's avail_idx).
	availAhead uint16

	// The host bytes of the descriptor table and the two rings, from
	// mem.Slice when Enable found each inside one region of guest memory:
	// ring accesses index them, and Go checks every index, instead of
	// looking the region up again for each field. Guest memory outlives
	// an enabled queue (guestmem.Memory.Close comes after every device
	// is reset), as it does the buffers a device hands the host.
	desc, avail, used []byte

	served Chain // Serve's, popped into again for each chain

	fence atomic.Uint32 // target of the RMW that serves as a barrier
}

// NewQueue returns a disabled queue whose size the driver may set up to
// maxSize, a power of two no larger than MaxQueueSize.
func NewQueue(maxSize uint16) (*Queue, error) {
	if !isPow2(uint32(maxSize)) || maxSize > MaxQueueSize {
		return nil, fmt.Errorf("%w: maximum %d", ErrQueueSize, maxSize)
	}
	return &Queue{maxSize: maxSize}, nil
}

func isPow2(n uint32) bool { return n != 0 && n&(n-1) == 0 }

// MaxSize is the largest Queue Size the device offers.
func (q *Queue) MaxSize() uint16 { return q.maxSize }

// Ready reports whether the queue is enabled (queue_enable, §4.1.4.3).
func (q *Queue) Ready() bool { return q.ready }

// Size is the Queue Size the queue was enabled with (0 while disabled).
func (q *Queue) Size() uint16 { return q.cfg.Size }

// Config returns the configuration the queue was enabled with.
func (q *Queue) Config() Config { return q.cfg }

// Err returns the error that broke the queue, or nil.
func (q *Queue) Err() error { return q.broken }

// Enable validates c against mem and, if it is sound, makes the queue
// ready with its indices at zero. Errors unwrap to ErrBadConfig and to the
// specific reason.
func (q *Queue) Enable(mem *guestmem.Memory, c Config) error {
	if q.ready {
		return fmt.Errorf("%w: queue already enabled", ErrBadConfig)
	}
	parts, err := q.validate(mem, c)
	if err != nil {
		return err
	}
	q.Reset()
	c.Features &= QueueFeatures
	q.cfg = c
	q.desc, q.avail, q.used = parts[0], parts[1], parts[2]
	q.ready = true
	return nil
}

// validate checks the size and that each part is aligned (§2.7, "Virtqueue
// Part" table) and lies wholly inside one region of guest memory, and
// returns the parts' host bytes: descriptor table, available ring, used
// ring.
func (q *Queue) validate(mem *guestmem.Memory, c Config) ([3][]byte, error) {
	var out [3][]byte
	if !isPow2(uint32(c.Size)) || c.Size > q.maxSize {
		return out, fmt.Errorf("%w: %w: size %d, maximum %d", ErrBadConfig, ErrQueueSize, c.Size, q.maxSize)
	}
	parts := []struct {
		name  string
		addr  guestmem.GuestAddr
		align uint64
		size  uint64
	}{
		{"descriptor table", c.DescTable, DescTableAlign, DescTableSize(c.Size)},
		{"available ring", c.AvailRing, AvailRingAlign, AvailRingSize(c.Size)},
		{"used ring", c.UsedRing, UsedRingAlign, UsedRingSize(c.Size)},
	}
	for i, p := range parts {
		if uint64(p.addr)%p.align != 0 {
			return out, fmt.Errorf("%w: %w: %s at %v, want %d-byte alignment", ErrBadConfig, ErrRingAlignment, p.name, p.addr, p.align)
		}
		b, err := mem.Slice(p.addr, p.size)
		if err != nil {
			return out, fmt.Errorf("%w: %w: %s at %v, %d bytes", ErrBadConfig, ErrRingOutOfMemory, p.name, p.addr, p.size)
		}
		out[i] = b
	}
	return out, nil
}

// Reset returns the queue to its state after NewQueue (device reset,
// §2.1.1, or queue reset).
func (q *Queue) Reset() {
	q.cfg = Config{}
	q.ready = false
	q.nextAvail, q.nextUsed, q.signalled = 0, 0, 0
	q.availAhead = 0
	q.inFlight = 0
	q.broken = nil
	q.desc, q.avail, q.used = nil, nil, nil
	q.served = Chain{} // it named the old rings' buffers
}

func (q *Queue) eventIdx() bool { return q.cfg.Features&FeatureEventIdx != 0 }
func (q *Queue) indirect() bool { return q.cfg.Features&FeatureIndirectDesc != 0 }

// barrier is a full memory barrier between the device's accesses to the
// rings and the driver's (see the package comment).
func (q *Queue) barrier() { q.fence.Add(1) }

func (q *Queue) usable() error {
	if q.broken != nil {
		return q.broken
	}
	if !q.ready {
		return ErrNotReady
	}
	return nil
}

// fail marks the queue broken with err, which must unwrap to ErrNeedsReset.
func (q *Queue) fail(err error) error {
	q.broken = err
	return err
}

// needsReset wraps a guest-caused error so it also unwraps to ErrNeedsReset.
type needsReset struct{ error }

func (e needsReset) Unwrap() []error { return []error{e.error, ErrNeedsReset} }

// Ring fields, little-endian (§2.7.6, §2.7.8), at offsets inside the part
// that Enable sized for Queue Size.

func (q *Queue) availIdx() uint16 { return binary.LittleEndian.Uint16(q.avail[AvailIdxOffset:]) }

func (q *Queue) availFlags() uint16 { return binary.LittleEndian.Uint16(q.avail[AvailFlagsOffset:]) }

func (q *Queue) availEntry(slot uint64) uint16 {
	return binary.LittleEndian.Uint16(q.avail[AvailRingOffset+AvailEntrySize*slot:])
}

func (q *Queue) usedEvent() uint16 {
	return binary.LittleEndian.Uint16(q.avail[UsedEventOffset(q.cfg.Size):])
}

func (q *Queue) setAvailEvent(v uint16) {
	binary.LittleEndian.PutUint16(q.used[AvailEventOffset(q.cfg.Size):], v)
}

func (q *Queue) setUsedIdx(v uint16) { binary.LittleEndian.PutUint16(q.used[UsedIdxOffset:], v) }

func (q *Queue) putUsedElem(slot uint64, e UsedElem) {
	elem := q.used[UsedRingOffset+UsedElemSize*slot:]
	binary.LittleEndian.PutUint32(elem[UsedElemIDOffset:], uint32(e.Head))
	binary.LittleEndian.PutUint32(elem[UsedElemLenOffset:], e.Written)
}

// Pop returns the next available descriptor chain, validated whole, or nil
// when the driver has made nothing new available.
func (q *Queue) Pop(mem *guestmem.Memory) (*Chain, error) {
	head, ok, err := q.nextHead()
	if err != nil || !ok {
		return nil, err
	}
	c := new(Chain)
	if err := q.take(mem, head, c); err != nil {
		return nil, err
	}
	return c, nil
}

// PopInto is Pop into c, a chain the caller owns and has done with (one
// it popped before and returned with AddUsed, or a new one): it empties c
// and fills it with the next chain, so that nothing of the chain c held
// reaches its user, and a device that keeps its chains for reuse pops
// without allocating. It reports false when the driver has made nothing
// new available; then, and on an error, c is left empty.
func (q *Queue) PopInto(mem *guestmem.Memory, c *Chain) (bool, error) {
	head, ok, err := q.nextHead()
	if ok {
		if err = q.take(mem, head, c); err == nil {
			return true, nil
		}
	}
	c.reset(0)
	return false, err
}

// nextHead returns the head of the next available chain and reports
// whether there is one. It reads avail.idx only once the entries seen at
// the last read are all taken.
func (q *Queue) nextHead() (uint16, bool, error) {
	if err := q.usable(); err != nil {
		return 0, false, err
	}
	if q.availAhead == 0 {
		n, err := q.refresh()
		if err != nil || n == 0 {
			return 0, false, err
		}
		q.availAhead = n
	}
	return q.availEntry(uint64(q.nextAvail & (q.cfg.Size - 1))), true, nil
}

// refresh reads avail.idx and returns how many entries are available
// past nextAvail, refusing a jump of more than Queue Size; when there are
// some, the ring entries and descriptors behind them may be read once it
// returns. With VIRTIO_F_EVENT_IDX and none, it first asks for a
// notification of the next one (avail_event).
func (q *Queue) refresh() (uint16, error) {
	n := q.availIdx() - q.nextAvail // wraps: both are free-running uint16 indices
	if n == 0 && q.eventIdx() {
		// §2.7.10: ask for a notification when the driver fills the entry
		// the device waits on, then look again. The avail_event store must
		// be visible before avail.idx is re-read (a store-load barrier),
		// or a buffer added in between could wait forever for a kick.
		q.setAvailEvent(q.nextAvail)
		q.barrier()
		n = q.availIdx() - q.nextAvail
	}
	if n > q.cfg.Size {
		return 0, q.fail(q.availJump(q.nextAvail + n))
	}
	if n != 0 {
		// Read barrier: the ring entries and the descriptors they name
		// are read only after avail.idx says they are there (§2.7.13: the
		// driver writes them before it updates idx). One barrier covers
		// all n entries.
		q.barrier()
	}
	return n, nil
}

// availJump is the error for avail.idx at idx, more than Queue Size
// entries past the device's position.
func (q *Queue) availJump(idx uint16) error {
	return needsReset{fmt.Errorf("%w: avail.idx %d, device at %d, queue size %d",
		ErrAvailIdxJump, idx, q.nextAvail, q.cfg.Size)}
}

// take reads the chain at head into c and moves past its ring entry.
func (q *Queue) take(mem *guestmem.Memory, head uint16, c *Chain) error {
	if err := q.readChain(mem, head, c); err != nil {
		return q.fail(err)
	}
	q.nextAvail++
	q.availAhead--
	q.inFlight++
	return nil
}

// AddUsed returns the chain whose head is head to the driver, saying that
// the device wrote written bytes into it (§2.7.8, §2.7.14).
func (q *Queue) AddUsed(mem *guestmem.Memory, head uint16, written uint32) error {
	return q.AddUsedBatch(mem, []UsedElem{{Head: head, Written: written}})
}

// UsedElem is one chain returned to the driver: its head and how many
// bytes the device wrote into it.
type UsedElem struct {
	Head    uint16
	Written uint32
}

// AddUsedBatch returns several chains at once: every element is written
// before used.idx moves, once, past all of them, so the driver sees them
// together (a merged receive packet's buffers, §5.1.6.4.1). It checks them
// all first and returns none if one is wrong.
func (q *Queue) AddUsedBatch(mem *guestmem.Memory, elems []UsedElem) error {
	if err := q.usable(); err != nil {
		return err
	}
	for _, e := range elems {
		if e.Head >= q.cfg.Size {
			return fmt.Errorf("%w: %d, queue size %d", ErrUsedHeadOutOfRange, e.Head, q.cfg.Size)
		}
	}
	if uint64(len(elems)) > uint64(q.inFlight) {
		return fmt.Errorf("%w: returning %d chains, %d in flight", ErrNothingInFlight, len(elems), q.inFlight)
	}
	if len(elems) == 0 {
		return nil
	}
	for i, e := range elems {
		q.putUsedElem(uint64((q.nextUsed+uint16(i))&(q.cfg.Size-1)), e)
	}
	// Write barrier: the buffer contents and the elements (§2.7.8.2: len
	// "prior to updating the used idx") are visible before the new idx.
	q.barrier()
	next := q.nextUsed + uint16(len(elems))
	q.setUsedIdx(next)
	q.nextUsed = next
	q.inFlight -= uint32(len(elems))
	return nil
}

// NeedsNotification reports whether the driver wants a used-buffer
// notification for the entries added since the previous call: with
// VIRTIO_F_EVENT_IDX, whether used.idx moved past used_event (§2.7.7,
// vring_need_event); otherwise unless avail.flags has
// VIRTQ_AVAIL_F_NO_INTERRUPT. No new entries, no notification.
func (q *Queue) NeedsNotification(mem *guestmem.Memory) (bool, error) {
	if err := q.usable(); err != nil {
		return false, err
	}
	// Store-load barrier: the used.idx store must be visible before the
	// driver's flags or used_event is read, or both sides can decide the
	// other will act (the driver sleeps, the device does not notify).
	q.barrier()
	old, now := q.signalled, q.nextUsed
	q.signalled = now
	if q.eventIdx() {
		return needEvent(q.usedEvent(), now, old), nil
	}
	if now == old {
		return false, nil
	}
	return q.availFlags()&AvailFNoInterrupt == 0, nil
}
