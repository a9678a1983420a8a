package blk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/virtio"
)

// Feature bits (§5.2.3), as masks over the feature word.
const (
	FeatureSegMax  uint64 = 1 << 2 // VIRTIO_BLK_F_SEG_MAX: seg_max is valid
	FeatureRO      uint64 = 1 << 5 // VIRTIO_BLK_F_RO: the disk is read-only
	FeatureBlkSize uint64 = 1 << 6 // VIRTIO_BLK_F_BLK_SIZE: blk_size is valid
	FeatureFlush   uint64 = 1 << 9 // VIRTIO_BLK_F_FLUSH: VIRTIO_BLK_T_FLUSH works
)

// Offsets in the device configuration space, struct virtio_blk_config
// (§5.2.4); all fields little-endian.
const (
	ConfigCapacity = 0  // le64 capacity, in 512-byte sectors
	ConfigSizeMax  = 8  // le32 size_max (VIRTIO_BLK_F_SIZE_MAX, not offered)
	ConfigSegMax   = 12 // le32 seg_max
	ConfigGeometry = 16 // struct virtio_blk_geometry (VIRTIO_BLK_F_GEOMETRY, not offered)
	ConfigBlkSize  = 20 // le32 blk_size
	// ConfigSize ends the space after blk_size: later fields belong to
	// features this device does not offer, and read as zero.
	ConfigSize = 24
)

const (
	// DefaultQueueSize is the largest queue size offered unless Options
	// say otherwise.
	DefaultQueueSize = 256
	// DefaultWorkers is how many requests run at once unless Options say
	// otherwise: enough to keep a host SSD's queue busy.
	DefaultWorkers = 16
	// minQueueSize leaves room for seg_max >= 1 besides header and status.
	minQueueSize = 4
)

// Device errors, not the guest's fault.
var (
	ErrQueueSize   = errors.New("block queue size must be a power of two from 4 to 32768")
	ErrNoQueue     = errors.New("block device activated without its queue")
	ErrNotActive   = errors.New("block device not activated")
	ErrQueueIndex  = errors.New("block device has one queue")
	ErrWorkers     = errors.New("block device workers must not be negative")
	errDiskIsRO    = errors.New("write to a read-only disk")
	errNoInterrupt = errors.New("nil interrupt")
)

// Options tune a Device.
type Options struct {
	// ReadOnly offers VIRTIO_BLK_F_RO and refuses writes even when the
	// backend would take them. A read-only backend implies it.
	ReadOnly bool
	// QueueSize is the largest queue size offered; 0 means
	// DefaultQueueSize.
	QueueSize uint16
	// Workers bounds how many jobs (a request, or adjacent ones merged)
	// run at once, each on a goroutine of its own doing preadv/pwritev; 0
	// means DefaultWorkers. With 1, jobs run one at a time in the order
	// the driver made their requests available, and complete in that
	// order.
	Workers int
	// OnError, if set, hears why each failed request failed (a malformed
	// request or a host I/O error) after its status is chosen. It runs on
	// a worker goroutine, or on Notify's (see runInline); calls never
	// overlap. It must not call the Device: on Notify's goroutine it may
	// run with the device's lock held (see serveLone).
	OnError func(head uint16, err error)
	// Clock reads a monotonic clock, for timing the blocking transfers
	// Notify makes itself (see runInline); nil means the host's.
	Clock func() time.Duration
}

// Device is a virtio block device (§5.2) with one request queue. The
// transport serialises Activate, Notify and Reset; ReadConfig only reads
// what New set, so it is safe from any goroutine.
//
// Notify hands requests to worker goroutines and returns; they complete
// in any order (see inflight.go), adjacent ones merged into one transfer
// and conflicting ones in ring order (merge.go). Reset waits for them. A
// lone job on a NonBlocking backend Notify runs itself (runInline): with a
// try that never waits, or, where the backend cannot try, with the
// blocking calls while they prove fast.
type Device struct {
	backend     Backend
	vectored    Vectored    // backend, when it takes several buffers a call
	nonBlocking NonBlocking // backend, when it can try a transfer without waiting
	clock       func() time.Duration
	readOnly    bool
	queueMax    uint16
	workers     int
	sectors     uint64
	id          [IDBytes]byte
	config      [ConfigSize]byte

	reportMu sync.Mutex // serialises onError calls from the workers
	onError  func(uint16, error)

	// mu guards the queue, which is not safe for concurrent use, and the
	// fields below. It is never held across Signal, nor across backend
	// I/O or copies to or from guest memory but by serveLone, which runs
	// only when nothing else does (see lone.go).
	mu   sync.Mutex
	idle sync.Cond // on mu; broadcast when running drops to 0

	// Set by Activate, cleared by Reset. Workers read writeThrough
	// without mu: it changes only while no worker runs.
	mem          *guestmem.Memory
	queue        *virtio.Queue
	irq          virtio.Interrupt
	writeThrough bool // VIRTIO_BLK_F_FLUSH not negotiated

	pending  []entry          // popped and parsed, waiting for a worker, in ring order
	active   []*scratch       // the jobs running, whose extents order later ones (merge.go)
	inFlight int              // popped and not yet returned: pending or running
	running  int              // worker goroutines alive, and runInline's job
	stopping bool             // Reset is waiting for the workers
	err      error            // what a worker met, for the next Notify
	spares   []*scratch       // scratch of exited runners, for reuse
	chains   virtio.ChainPool // chains of returned requests, for popAll to reuse
	// The blocking transfers runInline makes: how many in a row were
	// slow, and how many lone jobs are still to go to workers because
	// they were (see timed).
	slowRun, slowSkips int

	// completing counts workers whose request is done but not yet
	// returned; it is raised without mu, so complete can see that
	// another completion is on its way (see complete).
	completing atomic.Int32
}

var _ virtio.Device = (*Device)(nil)

// New returns a block device over backend. Its capacity and ID are read
// from the backend once, here.
func New(backend Backend, opts Options) (*Device, error) {
	size := opts.QueueSize
	if size == 0 {
		size = DefaultQueueSize
	}
	if size < minQueueSize || size > virtio.MaxQueueSize || size&(size-1) != 0 {
		return nil, fmt.Errorf("%w: %d", ErrQueueSize, size)
	}
	workers := opts.Workers
	if workers < 0 {
		return nil, fmt.Errorf("%w: %d", ErrWorkers, workers)
	}
	if workers == 0 {
		workers = DefaultWorkers
	}
	v, _ := backend.(Vectored)
	nb, _ := backend.(NonBlocking)
	clock := opts.Clock
	if clock == nil {
		epoch := time.Now()
		clock = func() time.Duration { return time.Since(epoch) } // the monotonic reading only
	}
	d := &Device{
		backend:     backend,
		vectored:    v,
		nonBlocking: nb,
		clock:       clock,
		readOnly:    opts.ReadOnly || backend.ReadOnly(),
		queueMax:    size,
		workers:     workers,
		sectors:     backend.Sectors(),
		id:          backend.ID(),
		onError:     opts.OnError,
	}
	d.idle.L = &d.mu
	binary.LittleEndian.PutUint64(d.config[ConfigCapacity:], d.sectors)
	// Linux adds two segments, header and status, to seg_max and needs
	// the total to fit a queue when it uses no indirect tables.
	binary.LittleEndian.PutUint32(d.config[ConfigSegMax:], uint32(size)-2)
	binary.LittleEndian.PutUint32(d.config[ConfigBlkSize:], SectorSize)
	return d, nil
}

// ID is virtio.IDBlock.
func (d *Device) ID() uint16 { return virtio.IDBlock }

// Features offers FLUSH, SEG_MAX and BLK_SIZE, and RO on a read-only disk.
func (d *Device) Features() uint64 {
	f := FeatureFlush | FeatureSegMax | FeatureBlkSize
	if d.readOnly {
		f |= FeatureRO
	}
	return f
}

// QueueMaxSizes is one request queue (§5.2.2).
func (d *Device) QueueMaxSizes() []uint16 { return []uint16{d.queueMax} }

// ReadConfig reads struct virtio_blk_config; bytes past blk_size read 0.
func (d *Device) ReadConfig(offset uint64, data []byte) {
	clear(data)
	if offset < ConfigSize {
		copy(data, d.config[offset:])
	}
}

// WriteConfig ignores the write: every field offered is read-only (only
// writeback, with VIRTIO_BLK_F_CONFIG_WCE, is writable, §5.2.4).
func (d *Device) WriteConfig(offset uint64, data []byte) {}

// Activate starts the device on its one queue.
func (d *Device) Activate(mem *guestmem.Memory, features uint64, queues []*virtio.Queue, irq virtio.Interrupt) error {
	if len(queues) != 1 || queues[0] == nil {
		return ErrNoQueue
	}
	if irq == nil {
		return errNoInterrupt
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mem, d.queue, d.irq = mem, queues[0], irq
	// Without VIRTIO_BLK_F_FLUSH the driver cannot ask for durability and
	// takes the cache to be write-through (§5.2.5; Linux's
	// virtblk_get_cache_mode), so every write is flushed as it completes.
	d.writeThrough = features&FeatureFlush == 0
	return nil
}

// Reset drops the requests no worker has started, waits for the running
// ones to finish (they return nothing to the driver), and forgets the
// queue and memory; the transport then resets the queue. Once it returns,
// no worker touches guest memory, the queue or the interrupt.
func (d *Device) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.quiesce()
	d.chains.Drop() // they name the old memory
	d.mem, d.queue, d.irq = nil, nil, nil
	d.writeThrough = false
	d.inFlight, d.err = 0, nil
}

// Notify pops every request the driver has made available and hands them
// to the workers, which run up to Options.Workers jobs at once and
// return each as it completes. It does not wait for them, with one
// exception: a lone job (nothing else in flight, and what was popped
// merges into one) on a NonBlocking backend is tried here first, and
// returned at once if the host's cache could serve it; where the backend
// cannot try, a read or write runs here with the blocking calls, unless
// one of those was recently slow (see runInline). A request that
// fails gets an error status; only a broken queue (unwrapping to
// virtio.ErrNeedsReset) or a failed interrupt is returned, here or, when
// a worker met it, from the next Notify.
func (d *Device) Notify(q int) error {
	if q != 0 {
		return fmt.Errorf("%w: notify for queue %d", ErrQueueIndex, q)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.queue == nil {
		return ErrNotActive
	}
	err := d.popAll()
	if d.inlineable() {
		d.runInline()
	}
	// Chains popped before a broken one are sound and run, as they did
	// when requests ran one by one.
	d.dispatch()
	if err == nil {
		err, d.err = d.err, nil
	}
	if err != nil {
		return fmt.Errorf("virtio-blk: %w", err)
	}
	return nil
}
