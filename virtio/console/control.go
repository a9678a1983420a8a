package console

import (
	"fmt"
	"sync"

	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/virtio"
)

// ctl is the control receiveq, on which both Notify and the feeders send,
// and the per-port state the control messages carry (§5.3.6.2). mu guards
// all of it. Lock order: mu before the transport's lock, which Signal
// takes.
type ctl struct {
	ports      []*port
	stats      *counters
	maxPending int

	mu      sync.Mutex
	mem     *guestmem.Memory
	q       *virtio.Queue // nil unless active with FeatureMultiport
	irq     virtio.Interrupt
	pending [][]byte // encoded messages waiting for receive buffers, oldest first
	st      []portState
	broken  error // the control receiveq's error
}

// portState is what the two ends know of a port.
type portState struct {
	announced bool // PORT_ADD sent since the last reset
	ready     bool // the driver answered PORT_READY 1
	guestOpen bool
	hostOpen  bool // kept across resets: the host's input may have ended
}

func newCtl(ports []*port, stats *counters) *ctl {
	c := &ctl{ports: ports, stats: stats, st: make([]portState, len(ports)),
		// Room for every message the ports need, with slack; a driver that
		// repeats PORT_READY without posting buffers gets no more.
		maxPending: 16 + 4*len(ports)}
	for i, p := range ports {
		c.st[i].hostOpen = p.hasBackend()
	}
	return c
}

// activate starts sending on q, or on nothing without FeatureMultiport.
func (c *ctl) activate(mem *guestmem.Memory, q *virtio.Queue, irq virtio.Interrupt) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mem, c.q, c.irq = mem, q, irq
}

// reset forgets the queue and the driver's view of the ports, and
// returns the ports whose guest end was open.
func (c *ctl) reset() (wasOpen []int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mem, c.q, c.irq = nil, nil, nil
	c.pending, c.broken = nil, nil
	for i, s := range c.st {
		if s.guestOpen {
			wasOpen = append(wasOpen, i)
		}
		c.st[i] = portState{hostOpen: s.hostOpen}
	}
	return wasOpen
}

// send queues a message for the driver. The caller holds c.mu.
func (c *ctl) send(m control, name string) {
	if c.q == nil {
		return
	}
	if len(c.pending) >= c.maxPending {
		c.stats.controlDropped.Add(1)
		return
	}
	c.pending = append(c.pending, m.appendTo(make([]byte, 0, controlSize+len(name)), name))
}

// deviceReady answers the driver's DEVICE_READY 1 by announcing every
// port not announced yet (§5.3.6.2: never a port twice).
func (c *ctl) deviceReady() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.st {
		if !c.st[i].announced {
			c.st[i].announced = true
			c.send(control{id: uint32(i), event: eventPortAdd, value: 1}, "")
		}
	}
}

// portReady answers PORT_READY 1 with the port's configuration. The host
// end's state goes before the name (QEMU sends it after): Linux's read
// returns end of file while it thinks the host end closed, so a guest
// that finds the port by its name and reads at once must know by then.
// Linux sends PORT_READY again, without DEVICE_READY, when it resumes
// after a reset, so an unannounced port is answered too.
func (c *ctl) portReady(id int, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.st[id].ready = ok
	if !ok {
		return
	}
	c.st[id].announced = true
	p := c.ports[id]
	if p.console {
		c.send(control{id: uint32(id), event: eventConsolePort, value: 1}, "")
	}
	c.send(control{id: uint32(id), event: eventPortOpen, value: boolValue(c.st[id].hostOpen)}, "")
	if p.name != "" {
		c.send(control{id: uint32(id), event: eventPortName, value: 1}, p.name)
	}
}

// setGuestOpen records the guest's end of port id and reports whether it
// changed.
func (c *ctl) setGuestOpen(id int, open bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	changed := c.st[id].guestOpen != open
	c.st[id].guestOpen = open
	return changed
}

func (c *ctl) guestOpen(id int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st[id].guestOpen
}

func (c *ctl) hostOpen(id int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st[id].hostOpen
}

// hostClosed closes the host end of port id for good and tells the
// driver, if it has set the port up; otherwise PORT_READY will.
func (c *ctl) hostClosed(id int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.st[id].hostOpen {
		return nil
	}
	c.st[id].hostOpen = false
	if !c.st[id].ready {
		return nil
	}
	c.send(control{id: uint32(id), event: eventPortOpen, value: 0}, "")
	return c.flushLocked()
}

// flush sends what the driver has buffers for.
func (c *ctl) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushLocked()
}

// flushLocked puts pending messages into control receive buffers, one
// each as Linux reads them, and interrupts the driver once if the ring
// asks for it. A broken queue is returned (it unwraps to
// virtio.ErrNeedsReset) until reset. The caller holds c.mu.
func (c *ctl) flushLocked() error {
	if c.broken != nil {
		return c.broken
	}
	if c.q == nil || len(c.pending) == 0 {
		return nil
	}
	for len(c.pending) > 0 {
		ch, err := c.q.Pop(c.mem)
		if err != nil {
			return c.fail(err)
		}
		if ch == nil {
			break
		}
		msg, written := c.pending[0], uint32(0)
		if ch.ReadableLen() == 0 && uint64(ch.WritableLen()) >= uint64(len(msg)) {
			w := ch.Writer()
			w.Write(msg) // cannot fail: the chain was validated and msg fits
			written = w.Written()
			c.pending[0] = nil
			c.pending = c.pending[1:]
		} else {
			c.stats.badChains.Add(1) // the message waits for the next buffer
		}
		if err := c.q.AddUsed(c.mem, ch.Head(), written); err != nil {
			return c.fail(err)
		}
	}
	need, err := c.q.NeedsNotification(c.mem)
	if err != nil {
		return c.fail(err)
	}
	if need {
		if err := c.irq.Signal(ControlRXQueue); err != nil {
			return fmt.Errorf("virtio-console: control interrupt: %w", err)
		}
	}
	return nil
}

func (c *ctl) fail(err error) error {
	c.broken = fmt.Errorf("virtio-console: control receiveq: %w", err)
	return c.broken
}
