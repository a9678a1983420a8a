package console

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/vmm-dev/vmm/virtio"
)

// Queue indices (§5.3.2): port 0's pair first, for drivers without
// FeatureMultiport, then the control pair, then one pair per further port.
const (
	ControlRXQueue = 2 // control receiveq: device to driver
	ControlTXQueue = 3 // control transmitq: driver to device
)

// RXQueue is the index of port's receiveq (host to guest).
func RXQueue(port int) int {
	if port == 0 {
		return 0
	}
	return 2*port + 2
}

// TXQueue is the index of port's transmitq (guest to host).
func TXQueue(port int) int { return RXQueue(port) + 1 }

// queuePort is the port whose data queue q is, and whether it is the
// transmitq; ok is false for the control queues and negative indices.
func queuePort(q int) (port int, tx bool, ok bool) {
	switch {
	case q < 0 || q == ControlRXQueue || q == ControlTXQueue:
		return 0, false, false
	case q < 2:
		return 0, q == 1, true
	}
	return q/2 - 1, q%2 == 1, true
}

const (
	// MaxPorts bounds the ports of one device: each costs two queues,
	// each with its MSI-X vector, and the VMM needs a handful.
	MaxPorts = 64
	// MaxNameLen bounds a port name so that a PORT_NAME message fits one
	// of the page-sized buffers Linux posts on the control receiveq.
	MaxNameLen = 4096 - controlSize
)

// ErrBadPort: a Port given to New cannot be offered to a driver.
var ErrBadPort = errors.New("invalid console port")

// Port describes one port of the device, numbered by its place in the
// list given to New.
type Port struct {
	// Name is sent to the driver with VIRTIO_CONSOLE_PORT_NAME; Linux
	// shows it in /sys/class/virtio-ports/vportNpM/name. UTF-8 without
	// NUL, unique, at most MaxNameLen bytes; empty sends no name.
	Name string
	// Console nominates the port as a console (VIRTIO_CONSOLE_CONSOLE_PORT):
	// Linux attaches an hvc terminal to it instead of /dev/vportNpM.
	Console bool
	// Out receives, in order, the bytes the guest writes to the port. A
	// Write that blocks holds the guest's buffer, which slows the guest
	// down (back-pressure); one that fails loses those bytes, counted in
	// PortStats.TXDropped. Nil drops everything the guest writes.
	Out io.Writer
	// In is read, from the first Activate on, for bytes to give the guest,
	// which gets them while it has the port open. At EOF (or a read
	// error) the guest is told the host closed the port once it has had
	// every byte, so its reads then return end of file.
	In io.Reader
	// OnGuestOpen, if set, hears every change of the guest's end of the
	// port: opened (VIRTIO_CONSOLE_PORT_OPEN 1) or closed (0, or a device
	// reset). A close is reported after every byte the guest queued on
	// the port before it has gone to Out. It runs on the goroutine that
	// called Notify, Activate or Reset, with no device lock held but with
	// the transport's; it must not block or call into the transport.
	OnGuestOpen func(open bool)
}

// validatePorts checks ports for New.
func validatePorts(ports []Port) error {
	if len(ports) == 0 || len(ports) > MaxPorts {
		return fmt.Errorf("%w: %d ports, want 1 to %d", ErrBadPort, len(ports), MaxPorts)
	}
	seen := map[string]bool{}
	for i, p := range ports {
		switch {
		case len(p.Name) > MaxNameLen:
			return fmt.Errorf("%w: port %d: name of %d bytes, at most %d", ErrBadPort, i, len(p.Name), MaxNameLen)
		case !utf8.ValidString(p.Name) || strings.IndexByte(p.Name, 0) >= 0:
			return fmt.Errorf("%w: port %d: name %q is not UTF-8 without NUL", ErrBadPort, i, p.Name)
		case p.Name != "" && seen[p.Name]:
			return fmt.Errorf("%w: port %d: name %q used twice", ErrBadPort, i, p.Name)
		}
		seen[p.Name] = true
	}
	return nil
}

// port is a Port as the device runs it.
type port struct {
	id      int
	name    string
	console bool
	out     io.Writer
	onOpen  func(bool)
	in      *pump         // nil without Port.In
	kick    chan struct{} // wakes the feeder: buffers posted or the guest's end changed
	stats   portCounters

	// Set by Activate, cleared by Reset.
	rxq, txq *virtio.Queue
	feeder   *feeder

	// The input being delivered. Only the running feeder touches these;
	// Reset waits for it, so they carry over to the next activation.
	cur        []byte // undelivered bytes of chunk
	chunk      []byte // the pump's buffer, handed back once delivered
	inputEnded bool   // the pump returned and its chunks were all taken

	txErrorShown atomic.Bool // OnError heard about a failing writer

	// What the feeder waits for, and whether a kick is on its way to it:
	// it is idle, touching no guest memory until woken, when it waits and
	// no kick is pending. Tests rely on it to read the rings safely.
	mu      sync.Mutex
	waiting waitReason
	kicked  bool
}

func newPort(id int, p Port) *port {
	pt := &port{id: id, name: p.Name, console: p.Console, out: p.Out, onOpen: p.OnGuestOpen,
		kick: make(chan struct{}, 1)}
	if p.In != nil {
		pt.in = newPump(p.In)
	}
	return pt
}

// hasBackend says whether the host end is open at first (PORT_OPEN 1):
// the port carries data one way or the other.
func (p *port) hasBackend() bool { return p.in != nil || p.out != nil }

// wake pokes the feeder, if any; one pending poke is enough, as it looks
// at the whole state when it wakes.
func (p *port) wake() {
	p.mu.Lock()
	p.kicked = true
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// setWaiting records what the feeder waits for; when a kick woke it, the
// kick is no longer pending.
func (p *port) setWaiting(why waitReason, tookKick bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.waiting = why
	if tookKick {
		p.kicked = false
	}
}

// notifyOpen tells the owner of the port about the guest's end.
func (p *port) notifyOpen(open bool) {
	if p.onOpen != nil {
		p.onOpen(open)
	}
}
