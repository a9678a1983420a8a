package blk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

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
	// minQueueSize leaves room for seg_max >= 1 besides header and status.
	minQueueSize = 4
	// chunkSize bounds the host buffer a request is copied through, so a
	// 4 GiB request costs no more host memory than a small one.
	chunkSize = 128 << 10
)

// Device errors, not the guest's fault.
var (
	ErrQueueSize   = errors.New("block queue size must be a power of two from 4 to 32768")
	ErrNoQueue     = errors.New("block device activated without its queue")
	ErrNotActive   = errors.New("block device not activated")
	ErrQueueIndex  = errors.New("block device has one queue")
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
	// OnError, if set, hears why each failed request failed (a malformed
	// request or a host I/O error) after its status is chosen. It runs on
	// the device's goroutine.
	OnError func(head uint16, err error)
}

// Device is a virtio block device (§5.2) with one request queue. The
// transport serialises Activate, Notify and Reset; ReadConfig only reads
// what New set, so it is safe from any goroutine.
type Device struct {
	backend  Backend
	readOnly bool
	queueMax uint16
	sectors  uint64
	id       [IDBytes]byte
	config   [ConfigSize]byte
	onError  func(uint16, error)
	buf      []byte // chunkSize bytes of bounce buffer

	// Set by Activate, cleared by Reset.
	mem          *guestmem.Memory
	queue        *virtio.Queue
	irq          virtio.Interrupt
	writeThrough bool // VIRTIO_BLK_F_FLUSH not negotiated
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
	d := &Device{
		backend:  backend,
		readOnly: opts.ReadOnly || backend.ReadOnly(),
		queueMax: size,
		sectors:  backend.Sectors(),
		id:       backend.ID(),
		onError:  opts.OnError,
		buf:      make([]byte, chunkSize),
	}
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
	d.mem, d.queue, d.irq = mem, queues[0], irq
	// Without VIRTIO_BLK_F_FLUSH the driver cannot ask for durability and
	// takes the cache to be write-through (§5.2.5; Linux's
	// virtblk_get_cache_mode), so every write is flushed as it completes.
	d.writeThrough = features&FeatureFlush == 0
	return nil
}

// Reset forgets the queue and memory; the transport resets the queue.
func (d *Device) Reset() {
	d.mem, d.queue, d.irq = nil, nil, nil
	d.writeThrough = false
}

// Notify runs every request the driver has made available, in order, then
// signals the interrupt if the driver wants it. A request that fails gets
// an error status; only a broken queue (unwrapping to
// virtio.ErrNeedsReset) or a failed interrupt is returned.
func (d *Device) Notify(q int) error {
	if q != 0 {
		return fmt.Errorf("%w: notify for queue %d", ErrQueueIndex, q)
	}
	if d.queue == nil {
		return ErrNotActive
	}
	if err := virtio.Serve(d.queue, d.mem, d.irq, 0, d.process); err != nil {
		return fmt.Errorf("virtio-blk: %w", err)
	}
	return nil
}

// process parses and runs one request, writes its status byte, and
// returns the number of bytes written into the chain for AddUsed. A chain
// without a writable byte has nowhere to put a status: it is returned
// with nothing written.
func (d *Device) process(c *virtio.Chain) uint32 {
	w := c.Writer()
	req, err := ParseRequest(c, d.sectors)
	if err == nil {
		err = d.execute(c, req, w)
	}
	status := Status(err)
	if err != nil && d.onError != nil {
		d.onError(c.Head(), err)
	}
	if c.WritableLen() == 0 {
		return 0
	}
	if err := d.finish(w, status); err != nil && d.onError != nil {
		d.onError(c.Head(), err) // unreachable: the chain was validated
	}
	return w.Written()
}

// execute runs a parsed request; the data goes through the bounce buffer
// one chunk at a time.
func (d *Device) execute(c *virtio.Chain, req Request, w *virtio.Writer) error {
	switch req.Type {
	case TypeIn:
		return d.read(req, w)
	case TypeOut:
		if d.readOnly {
			return errDiskIsRO
		}
		if err := d.write(c, req); err != nil {
			return err
		}
		if d.writeThrough {
			return d.backend.Flush()
		}
		return nil
	case TypeFlush:
		if d.readOnly {
			return nil // nothing was written
		}
		return d.backend.Flush()
	case TypeGetID:
		_, err := w.Write(d.id[:])
		return err
	}
	return fmt.Errorf("%w: %d", ErrUnsupported, req.Type) // unreachable: ParseRequest refused it
}

// read copies the request's sectors from the backend into the chain.
func (d *Device) read(req Request, w *virtio.Writer) error {
	off := req.Offset()
	for done := uint32(0); done < req.DataLen; {
		p := d.buf[:min(req.DataLen-done, chunkSize)]
		if _, err := d.backend.ReadAt(p, off+int64(done)); err != nil {
			return fmt.Errorf("read sector %d: %w", req.Sector, err)
		}
		if _, err := w.Write(p); err != nil {
			return err
		}
		done += uint32(len(p))
	}
	return nil
}

// write copies the request's data, after the header, into the backend.
func (d *Device) write(c *virtio.Chain, req Request) error {
	r := c.Reader()
	if _, err := io.ReadFull(r, d.buf[:HeaderSize]); err != nil {
		return err
	}
	off := req.Offset()
	for done := uint32(0); done < req.DataLen; {
		p := d.buf[:min(req.DataLen-done, chunkSize)]
		if _, err := io.ReadFull(r, p); err != nil {
			return err
		}
		if _, err := d.backend.WriteAt(p, off+int64(done)); err != nil {
			return fmt.Errorf("write sector %d: %w", req.Sector, err)
		}
		done += uint32(len(p))
	}
	return nil
}

// finish writes status into the chain's last writable byte. Whatever the
// request left unwritten before it (a read that failed half-way, a GET_ID
// buffer longer than the ID) is zero-filled, since a Writer only moves
// forward.
func (d *Device) finish(w *virtio.Writer, status byte) error {
	if w.Remaining() < StatusSize {
		return fmt.Errorf("no room for the status: %w", io.ErrShortWrite) // unreachable: requests stop before it
	}
	zeros := d.buf[:min(w.Remaining()-StatusSize, chunkSize)]
	clear(zeros)
	for w.Remaining() > StatusSize {
		if _, err := w.Write(zeros[:min(w.Remaining()-StatusSize, uint32(len(zeros)))]); err != nil {
			return err
		}
	}
	_, err := w.Write([]byte{status})
	return err
}
