package virtio

import (
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
	if err := q.validate(mem, c); err != nil {
		return err
	}
	q.Reset()
	c.Features &= QueueFeatures
	q.cfg = c
	q.ready = true
	return nil
}

// validate checks the size and that each part is aligned (§2.7, "Virtqueue
// Part" table) and lies wholly inside one region of guest memory.
func (q *Queue) validate(mem *guestmem.Memory, c Config) error {
	if !isPow2(uint32(c.Size)) || c.Size > q.maxSize {
		return fmt.Errorf("%w: %w: size %d, maximum %d", ErrBadConfig, ErrQueueSize, c.Size, q.maxSize)
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
	for _, p := range parts {
		if uint64(p.addr)%p.align != 0 {
			return fmt.Errorf("%w: %w: %s at %v, want %d-byte alignment", ErrBadConfig, ErrRingAlignment, p.name, p.addr, p.align)
		}
		if !mem.Contains(p.addr, p.size) {
			return fmt.Errorf("%w: %w: %s at %v, %d bytes", ErrBadConfig, ErrRingOutOfMemory, p.name, p.addr, p.size)
		}
	}
	return nil
}

// Reset returns the queue to its state after NewQueue (device reset,
// §2.1.1, or queue reset).
func (q *Queue) Reset() {
	q.cfg = Config{}
	q.ready = false
	q.nextAvail, q.nextUsed, q.signalled = 0, 0, 0
	q.inFlight = 0
	q.broken = nil
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

// ringAddr returns base+off; the rings were validated by Enable, so the sum
// cannot overflow.
func ringAddr(base guestmem.GuestAddr, off uint64) guestmem.GuestAddr {
	a, _ := base.Add(off)
	return a
}

// pending returns how many entries the driver has made available past the
// device's position, refusing a jump of more than Queue Size.
func (q *Queue) pending(mem *guestmem.Memory) (uint16, error) {
	idx, err := mem.ReadUint16(ringAddr(q.cfg.AvailRing, AvailIdxOffset))
	if err != nil {
		return 0, needsReset{err}
	}
	n := idx - q.nextAvail // wraps: both are free-running uint16 indices
	if n > q.cfg.Size {
		return 0, needsReset{fmt.Errorf("%w: avail.idx %d, device at %d, queue size %d",
			ErrAvailIdxJump, idx, q.nextAvail, q.cfg.Size)}
	}
	return n, nil
}

// Pop returns the next available descriptor chain, validated whole, or nil
// when the driver has made nothing new available.
func (q *Queue) Pop(mem *guestmem.Memory) (*Chain, error) {
	if err := q.usable(); err != nil {
		return nil, err
	}
	n, err := q.pending(mem)
	if err != nil {
		return nil, q.fail(err)
	}
	if n == 0 && q.eventIdx() {
		// §2.7.10: ask for a notification when the driver fills the entry
		// the device waits on, then look again. The avail_event store must
		// be visible before avail.idx is re-read (a store-load barrier),
		// or a buffer added in between could wait forever for a kick.
		err := mem.WriteUint16(ringAddr(q.cfg.UsedRing, AvailEventOffset(q.cfg.Size)), q.nextAvail)
		if err != nil {
			return nil, q.fail(needsReset{err})
		}
		q.barrier()
		if n, err = q.pending(mem); err != nil {
			return nil, q.fail(err)
		}
	}
	if n == 0 {
		return nil, nil
	}
	// Read barrier: the ring entry and the descriptors it names are read
	// only after avail.idx says they are there (§2.7.13: the driver
	// writes them before it updates idx).
	q.barrier()
	slot := uint64(q.nextAvail & (q.cfg.Size - 1))
	head, err := mem.ReadUint16(ringAddr(q.cfg.AvailRing, AvailRingOffset+AvailEntrySize*slot))
	if err != nil {
		return nil, q.fail(needsReset{err})
	}
	c, err := q.readChain(mem, head)
	if err != nil {
		return nil, q.fail(err)
	}
	q.nextAvail++
	q.inFlight++
	return c, nil
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
		slot := uint64((q.nextUsed + uint16(i)) & (q.cfg.Size - 1))
		elem := ringAddr(q.cfg.UsedRing, UsedRingOffset+UsedElemSize*slot)
		if err := mem.WriteUint32(ringAddr(elem, UsedElemIDOffset), uint32(e.Head)); err != nil {
			return q.fail(needsReset{err})
		}
		if err := mem.WriteUint32(ringAddr(elem, UsedElemLenOffset), e.Written); err != nil {
			return q.fail(needsReset{err})
		}
	}
	// Write barrier: the buffer contents and the elements (§2.7.8.2: len
	// "prior to updating the used idx") are visible before the new idx.
	q.barrier()
	next := q.nextUsed + uint16(len(elems))
	if err := mem.WriteUint16(ringAddr(q.cfg.UsedRing, UsedIdxOffset), next); err != nil {
		return q.fail(needsReset{err})
	}
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
		ev, err := mem.ReadUint16(ringAddr(q.cfg.AvailRing, UsedEventOffset(q.cfg.Size)))
		if err != nil {
			return false, q.fail(needsReset{err})
		}
		return needEvent(ev, now, old), nil
	}
	if now == old {
		return false, nil
	}
	flags, err := mem.ReadUint16(ringAddr(q.cfg.AvailRing, AvailFlagsOffset))
	if err != nil {
		return false, q.fail(needsReset{err})
	}
	return flags&AvailFNoInterrupt == 0, nil
}
