// Package net is the virtio network device (virtio 1.2 §5.1) with a
// receive queue and a transmit queue, no control queue, and a Backend
// that moves packets to the host: a TAP with IFF_VNET_HDR, which reads
// and writes the virtio-net header itself, so checksum and segmentation
// offloads pass through untouched; or a Socket to a switch, which
// carries plain frames, so the device offers no offloads over it.
//
// Transmit runs in Notify on the transport's goroutine. Receive runs on a
// goroutine of its own, started by Activate and stopped by Reset, that
// reads the backend and fills the driver's receive buffers.
package net

import (
	"errors"
	"fmt"
	"time"

	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/virtio"
)

// Queue indices (§5.1.2).
const (
	RXQueue = 0 // receiveq1
	TXQueue = 1 // transmitq1
)

// DefaultQueueSize is the largest queue size offered unless Options say
// otherwise.
const DefaultQueueSize = 256

// Device errors, not the guest's fault.
var (
	ErrQueueSize  = errors.New("network queue size must be a power of two from 2 to 32768")
	ErrNoQueue    = errors.New("network device activated without its receive and transmit queues")
	ErrNotActive  = errors.New("network device not activated")
	ErrActive     = errors.New("network device already activated")
	ErrQueueIndex = errors.New("network device has queues 0 (receive) and 1 (transmit)")

	errNoInterrupt = errors.New("nil interrupt")
)

// Options configure a Device.
type Options struct {
	// MAC is the device's address, offered with VIRTIO_NET_F_MAC: a
	// unicast address, not all zeros (RandomMAC makes one).
	MAC MAC
	// QueueSize is the largest size of each queue; 0 means
	// DefaultQueueSize.
	QueueSize uint16
	// OnError, if set, hears why the receive goroutine stopped: a broken
	// receive queue (unwrapping to virtio.ErrNeedsReset, which the VMM
	// can hand to the transport's HandleNotifyError at once rather than
	// wait for the driver's next receive notification) or a backend that
	// failed. It also hears interrupts that could not be signalled. It
	// runs on the receive goroutine with no device lock held.
	OnError func(error)
}

// Device is a virtio network device (§5.1). The transport serialises
// Activate, Notify and Reset; ReadConfig only reads what New set, and
// Stats reads atomics, so both are safe from any goroutine.
type Device struct {
	backend  Backend
	queueMax uint16
	config   [ConfigSize]byte
	onError  func(error)
	features uint64 // offered: offeredFeatures less what the backend cannot carry
	stats    counters
	txBuf    []byte // MaxPacketSize bytes: a transmitted packet, copied out of the chain
	rxBuf    []byte // MaxPacketSize+1 bytes: the packet being received
	// kick carries Notify(RXQueue) to the receive goroutine; one pending
	// kick is enough, as the goroutine looks at the whole ring when it
	// wakes.
	kick chan struct{}

	// Set by Activate, cleared by Reset.
	mem *guestmem.Memory
	txq *virtio.Queue
	irq virtio.Interrupt
	rx  *receiver
}

var _ virtio.Device = (*Device)(nil)

// New returns a network device over backend. The device owns backend
// from here on: Close closes it.
func New(backend Backend, opts Options) (*Device, error) {
	size := opts.QueueSize
	if size == 0 {
		size = DefaultQueueSize
	}
	if size < 2 || size > virtio.MaxQueueSize || size&(size-1) != 0 {
		return nil, fmt.Errorf("%w: %d", ErrQueueSize, size)
	}
	if !opts.MAC.valid() {
		return nil, fmt.Errorf("%w: %v", ErrBadMAC, opts.MAC)
	}
	return &Device{
		backend:  backend,
		queueMax: size,
		config:   buildConfig(opts.MAC),
		features: backendFeatures(backend),
		onError:  opts.OnError,
		txBuf:    make([]byte, MaxPacketSize),
		rxBuf:    make([]byte, MaxPacketSize+1),
		kick:     make(chan struct{}, 1),
	}, nil
}

// ID is virtio.IDNet.
func (d *Device) ID() uint16 { return virtio.IDNet }

// Features offers checksum and TCP segmentation offload both ways (those
// the backend can carry), mergeable receive buffers, the MAC address and
// the link status.
func (d *Device) Features() uint64 { return d.features }

// Offloader is a Backend that says which offload feature bits it can
// carry; the device offers the driver no others. A Backend that is not an
// Offloader carries them all, as a TAP does.
type Offloader interface {
	// Offloads returns the offload bits (VIRTIO_NET_F_CSUM, GUEST_CSUM
	// and the TSO bits, each way) the backend honours.
	Offloads() uint64
}

// offloadFeatures are the offered bits that need the backend to read or
// write the virtio-net header's checksum and GSO fields.
const offloadFeatures = FeatureCsum | FeatureGuestCsum |
	FeatureGuestTSO4 | FeatureGuestTSO6 | FeatureGuestECN |
	FeatureHostTSO4 | FeatureHostTSO6 | FeatureHostECN

// backendFeatures is offeredFeatures without the offloads backend cannot
// carry, nor those that depend on them (§5.1.3.1: TSO needs the checksum
// offload of its direction, ECN needs TSO).
func backendFeatures(backend Backend) uint64 {
	o, ok := backend.(Offloader)
	if !ok {
		return offeredFeatures
	}
	f := offeredFeatures &^ (offloadFeatures &^ o.Offloads())
	if f&FeatureGuestCsum == 0 {
		f &^= FeatureGuestTSO4 | FeatureGuestTSO6
	}
	if f&(FeatureGuestTSO4|FeatureGuestTSO6) == 0 {
		f &^= FeatureGuestECN
	}
	if f&FeatureCsum == 0 {
		f &^= FeatureHostTSO4 | FeatureHostTSO6
	}
	if f&(FeatureHostTSO4|FeatureHostTSO6) == 0 {
		f &^= FeatureHostECN
	}
	return f
}

// QueueMaxSizes is receiveq1 and transmitq1 (§5.1.2).
func (d *Device) QueueMaxSizes() []uint16 { return []uint16{d.queueMax, d.queueMax} }

// ReadConfig reads struct virtio_net_config; bytes past status read 0.
func (d *Device) ReadConfig(offset uint64, data []byte) {
	clear(data)
	if offset < ConfigSize {
		copy(data, d.config[offset:])
	}
}

// WriteConfig ignores the write: with VIRTIO_F_VERSION_1 the driver
// writes no field of this space (§5.1.4.2; the MAC changes only through
// the control queue, not offered).
func (d *Device) WriteConfig(offset uint64, data []byte) {}

// Stats returns the device's counters.
func (d *Device) Stats() Stats { return d.stats.snapshot() }

// Activate starts the device: it tells the backend which receive offloads
// the driver accepted and starts the receive goroutine.
func (d *Device) Activate(mem *guestmem.Memory, features uint64, queues []*virtio.Queue, irq virtio.Interrupt) error {
	if len(queues) != 2 || queues[RXQueue] == nil || queues[TXQueue] == nil {
		return ErrNoQueue
	}
	if irq == nil {
		return errNoInterrupt
	}
	if d.rx != nil {
		return ErrActive
	}
	if err := d.backend.SetOffloads(features); err != nil {
		return fmt.Errorf("virtio-net: set backend offloads: %w", err)
	}
	// Reset left the deadline in the past to stop the last receiver.
	if err := d.backend.SetReadDeadline(time.Time{}); err != nil {
		return fmt.Errorf("virtio-net: backend read deadline: %w", err)
	}
	d.mem, d.txq, d.irq = mem, queues[TXQueue], irq
	d.rx = d.startReceiver(mem, queues[RXQueue], irq, features)
	return nil
}

// Reset stops the receive goroutine, waiting for it, and forgets the
// queues and memory; the transport resets the queues. A packet the
// goroutine held for want of buffers is lost, as on a real NIC.
func (d *Device) Reset() {
	if d.rx != nil {
		d.rx.stop()
		d.rx = nil
	}
	d.mem, d.txq, d.irq = nil, nil, nil
}

// Close stops the device and closes the backend. The VMM calls it after
// the transport stops calling the device and before guest memory is
// unmapped, since the receive goroutine writes guest memory until then.
func (d *Device) Close() error {
	d.Reset()
	return d.backend.Close()
}

// Notify handles a notification for queue q. For the transmit queue it
// sends every available packet; for the receive queue it wakes the
// receive goroutine, which may be waiting for buffers. A broken queue is
// returned (it unwraps to virtio.ErrNeedsReset); that direction then
// stops until Reset.
func (d *Device) Notify(q int) error {
	if d.rx == nil {
		return ErrNotActive
	}
	switch q {
	case RXQueue:
		if err := d.rx.err(); err != nil {
			return fmt.Errorf("virtio-net: receive: %w", err)
		}
		select {
		case d.kick <- struct{}{}:
		default: // a kick is already pending
		}
		return nil
	case TXQueue:
		if err := virtio.Serve(d.txq, d.mem, d.irq, TXQueue, d.transmit); err != nil {
			return fmt.Errorf("virtio-net: transmit: %w", err)
		}
		return nil
	}
	return fmt.Errorf("%w: notify for queue %d", ErrQueueIndex, q)
}
