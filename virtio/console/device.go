// Package console is the virtio console device (virtio 1.2 §5.3) with
// multiple ports (VIRTIO_CONSOLE_F_MULTIPORT): named byte streams between
// host and guest, such as a workload's stdin, stdout and stderr, apart from
// each other and from the kernel's serial console. Linux's virtio_console
// driver shows each port as /dev/vportNpM, named in
// /sys/class/virtio-ports/vportNpM/name.
//
// Guest to host: Notify writes each transmit chain's bytes to the port's
// io.Writer on the transport's goroutine. Host to guest: each port with an
// io.Reader has a pump goroutine that reads it and a feeder goroutine,
// started by Activate and stopped by Reset, that fills the guest's receive
// buffers. The control queues run the handshake: the driver's DEVICE_READY
// is answered with PORT_ADD for every port, each PORT_READY with
// CONSOLE_PORT (for a console), PORT_OPEN and PORT_NAME; the driver's
// PORT_OPEN says whether the guest has the port open.
package console

import (
	"errors"
	"fmt"

	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/virtio"
)

// DefaultQueueSize is the largest size of each queue unless Options say
// otherwise.
const DefaultQueueSize = 256

// Device errors, not the guest's fault.
var (
	ErrQueueSize  = errors.New("console queue size must be a power of two from 2 to 32768")
	ErrNoQueue    = errors.New("console device activated without port 0's queues or, with MULTIPORT, the control queues")
	ErrNotActive  = errors.New("console device not activated")
	ErrActive     = errors.New("console device already activated")
	ErrQueueIndex = errors.New("no such console queue")

	errNoInterrupt = errors.New("nil interrupt")
)

// Options configure a Device.
type Options struct {
	// QueueSize is the largest size of each queue; 0 means
	// DefaultQueueSize.
	QueueSize uint16
	// OnError, if set, hears what the device cannot return from Notify:
	// a receiveq that broke on a feeder goroutine (unwrapping to
	// virtio.ErrNeedsReset, for the transport's HandleNotifyError), an
	// input that failed, the first failed write to each Out, interrupts
	// that could not be signalled, and ErrDriverSetup. It runs with no
	// device lock held, on a feeder goroutine or the one calling Notify;
	// it must not wait for the transport's device lock, which Reset holds
	// while it waits for the feeders.
	OnError func(error)
}

// Device is a virtio console device (§5.3). The transport serialises
// Activate, Notify and Reset. ReadConfig reads only what New set, and
// Stats and GuestOpen are safe from any goroutine.
type Device struct {
	ports    []*port
	queueMax uint16
	config   [ConfigSize]byte
	onError  func(error)
	stats    counters
	ctl      *ctl
	txBuf    []byte // txBufSize bytes: guest output on its way to Out

	// Set by Activate, cleared by Reset.
	active bool
	mem    *guestmem.Memory
	irq    virtio.Interrupt
	ctlTX  *virtio.Queue // nil without FeatureMultiport
}

var _ virtio.Device = (*Device)(nil)

// New returns a console device with the given ports, port i being the
// i-th of the list (max_nr_ports is their number).
func New(ports []Port, opts Options) (*Device, error) {
	size := opts.QueueSize
	if size == 0 {
		size = DefaultQueueSize
	}
	if size < 2 || size > virtio.MaxQueueSize || size&(size-1) != 0 {
		return nil, fmt.Errorf("%w: %d", ErrQueueSize, size)
	}
	if err := validatePorts(ports); err != nil {
		return nil, err
	}
	d := &Device{queueMax: size, config: buildConfig(len(ports)), onError: opts.OnError,
		txBuf: make([]byte, txBufSize)}
	for i, p := range ports {
		d.ports = append(d.ports, newPort(i, p))
	}
	d.ctl = newCtl(d.ports, &d.stats)
	return d, nil
}

// ID is DeviceID.
func (d *Device) ID() uint16 { return DeviceID }

// Features offers multiple ports only: no console size (nothing resizes
// yet) and no emergency write (the serial console does that job).
func (d *Device) Features() uint64 { return FeatureMultiport }

// QueueMaxSizes lists every queue (§5.3.2): port 0's pair, the control
// pair, then a pair per further port. Linux enables them all.
func (d *Device) QueueMaxSizes() []uint16 {
	sizes := make([]uint16, 2*(len(d.ports)+1))
	for i := range sizes {
		sizes[i] = d.queueMax
	}
	return sizes
}

// ReadConfig reads struct virtio_console_config; bytes past it read 0.
func (d *Device) ReadConfig(offset uint64, data []byte) {
	clear(data)
	if offset < ConfigSize {
		copy(data, d.config[offset:])
	}
}

// WriteConfig ignores the write: emerg_wr is the only writable field, and
// FeatureEmergWrite is not offered.
func (d *Device) WriteConfig(offset uint64, data []byte) {}

// GuestOpen reports whether the guest has port open.
func (d *Device) GuestOpen(port int) bool {
	return port >= 0 && port < len(d.ports) && d.ctl.guestOpen(port)
}

// Activate starts the device on the enabled queues. Without
// FeatureMultiport only port 0 works, as a console the guest has open
// from the start, as Linux treats it.
func (d *Device) Activate(mem *guestmem.Memory, features uint64, queues []*virtio.Queue, irq virtio.Interrupt) error {
	multiport := features&FeatureMultiport != 0
	switch {
	case len(queues) != 2*(len(d.ports)+1) || queues[0] == nil || queues[1] == nil:
		return ErrNoQueue
	case multiport && (queues[ControlRXQueue] == nil || queues[ControlTXQueue] == nil):
		return ErrNoQueue
	case irq == nil:
		return errNoInterrupt
	case d.active:
		return ErrActive
	}
	d.active, d.mem, d.irq = true, mem, irq
	nports := 1
	if multiport {
		nports = len(d.ports)
		d.ctlTX = queues[ControlTXQueue]
		d.ctl.activate(mem, queues[ControlRXQueue], irq)
	}
	for _, p := range d.ports[:nports] {
		p.rxq, p.txq = queues[RXQueue(p.id)], queues[TXQueue(p.id)]
	}
	if !multiport && d.ctl.setGuestOpen(0, true) {
		d.ports[0].notifyOpen(true)
	}
	for _, p := range d.ports[:nports] {
		if p.in != nil && p.rxq != nil {
			p.feeder = d.startFeeder(p)
		}
	}
	return nil
}

// Reset stops the feeders, waiting for them, and forgets the queues and
// what the driver knew; the transport resets the queues. Input not yet
// delivered stays for the next activation. Ports the guest had open are
// reported closed.
func (d *Device) Reset() {
	for _, p := range d.ports {
		if p.feeder != nil {
			p.feeder.stop()
			p.feeder = nil
		}
		p.rxq, p.txq = nil, nil
	}
	wasOpen := d.ctl.reset()
	d.active, d.mem, d.irq, d.ctlTX = false, nil, nil, nil
	for _, id := range wasOpen {
		d.ports[id].notifyOpen(false)
	}
}

// Close stops the device and the input goroutines. The VMM calls it after
// the transport stops calling the device and before guest memory is
// unmapped. An input Read already waiting is left to return on its own:
// close the reader to end it.
func (d *Device) Close() error {
	d.Reset()
	for _, p := range d.ports {
		if p.in != nil {
			p.in.close()
		}
	}
	return nil
}

// Notify handles a notification for queue q: the control transmitq's
// messages, the control receiveq's new buffers, a port's output, or new
// receive buffers for a port's feeder. A broken queue is returned (it
// unwraps to virtio.ErrNeedsReset); that queue then stops until Reset.
func (d *Device) Notify(q int) error {
	if !d.active {
		return ErrNotActive
	}
	if d.ctlTX != nil {
		switch q {
		case ControlRXQueue:
			return d.ctl.flush()
		case ControlTXQueue:
			return d.serveControl()
		}
	}
	id, tx, ok := queuePort(q)
	if !ok || id >= len(d.ports) || (tx && d.ports[id].txq == nil) || (!tx && d.ports[id].rxq == nil) {
		// The driver enabled and notified a queue its features do not
		// have (a control queue without MULTIPORT): its fault, so
		// NEEDS_RESET, not an error the VMM logs on every notify.
		return fmt.Errorf("%w: notify for queue %d: %w", ErrQueueIndex, q, virtio.ErrNeedsReset)
	}
	p := d.ports[id]
	if tx {
		return d.serveTX(p)
	}
	if p.feeder == nil {
		return nil // no input: the buffers wait
	}
	if err := p.feeder.err(); err != nil {
		return err
	}
	p.wake()
	return nil
}

func (d *Device) report(err error) {
	if d.onError != nil {
		d.onError(err)
	}
}
