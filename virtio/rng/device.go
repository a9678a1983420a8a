// Package rng is the virtio entropy device (virtio 1.2 §5.4): one request
// queue whose device-writable buffers it fills with random bytes from an
// injected source.
package rng

import (
	"errors"
	"fmt"
	"io"

	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/virtio"
)

const (
	// DefaultQueueSize is the largest queue size offered.
	DefaultQueueSize = 256
	// MaxBytesPerRequest bounds what one chain gets, whatever its length,
	// so a guest cannot make the host allocate or read without limit;
	// §5.4.6.2 lets the device use less than the whole buffer.
	MaxBytesPerRequest = 64 << 10
)

// Device errors, not the guest's fault.
var (
	ErrNoQueue    = errors.New("entropy device activated without its queue")
	ErrNotActive  = errors.New("entropy device not activated")
	ErrQueueIndex = errors.New("entropy device has one queue")

	errNoInterrupt = errors.New("nil interrupt")
)

// Device is a virtio entropy device: no feature bits (§5.4.3), no
// configuration space (§5.4.4), one requestq (§5.4.2). The transport
// serialises Activate, Notify and Reset.
type Device struct {
	src io.Reader
	buf []byte // MaxBytesPerRequest bytes

	// Set by Activate, cleared by Reset.
	mem   *guestmem.Memory
	queue *virtio.Queue
	irq   virtio.Interrupt
}

var _ virtio.Device = (*Device)(nil)

// New returns an entropy device that reads from src: Getrandom{} in
// production, a deterministic reader in tests.
func New(src io.Reader) *Device {
	return &Device{src: src, buf: make([]byte, MaxBytesPerRequest)}
}

// ID is virtio.IDRNG.
func (d *Device) ID() uint16 { return virtio.IDRNG }

// Features is empty: §5.4.3 defines none.
func (d *Device) Features() uint64 { return 0 }

// QueueMaxSizes is the one requestq.
func (d *Device) QueueMaxSizes() []uint16 { return []uint16{DefaultQueueSize} }

// ReadConfig reads zeros: there is no configuration space.
func (d *Device) ReadConfig(offset uint64, data []byte) { clear(data) }

// WriteConfig ignores the write.
func (d *Device) WriteConfig(offset uint64, data []byte) {}

// Activate starts the device on its queue.
func (d *Device) Activate(mem *guestmem.Memory, features uint64, queues []*virtio.Queue, irq virtio.Interrupt) error {
	if len(queues) != 1 || queues[0] == nil {
		return ErrNoQueue
	}
	if irq == nil {
		return errNoInterrupt
	}
	d.mem, d.queue, d.irq = mem, queues[0], irq
	return nil
}

// Reset forgets the queue and memory; the transport resets the queue.
func (d *Device) Reset() { d.mem, d.queue, d.irq = nil, nil, nil }

// Notify fills every available chain's writable buffers, up to
// MaxBytesPerRequest each, returns them, and signals the interrupt if the
// driver wants it. Readable buffers are ignored. A broken queue is
// returned (it unwraps to virtio.ErrNeedsReset); so is a failing source,
// after every chain has been returned with what it got.
func (d *Device) Notify(q int) error {
	if q != 0 {
		return fmt.Errorf("%w: notify for queue %d", ErrQueueIndex, q)
	}
	if d.queue == nil {
		return ErrNotActive
	}
	var srcErr error
	err := virtio.Serve(d.queue, d.mem, d.irq, 0, func(c *virtio.Chain) uint32 {
		n, err := d.fill(c)
		if err != nil && srcErr == nil {
			srcErr = err
		}
		return n
	})
	if err != nil {
		return fmt.Errorf("virtio-rng: %w", err)
	}
	return srcErr
}

// fill writes random bytes into c's writable buffers and returns how many.
func (d *Device) fill(c *virtio.Chain) (uint32, error) {
	p := d.buf[:min(c.WritableLen(), MaxBytesPerRequest)]
	n, err := io.ReadFull(d.src, p)
	if err != nil {
		err = fmt.Errorf("virtio-rng: entropy source: %w", err)
	}
	w := c.Writer()
	if _, werr := w.Write(p[:n]); werr != nil && err == nil {
		err = fmt.Errorf("virtio-rng: %w", werr) // unreachable: the chain was validated
	}
	return w.Written(), err
}
