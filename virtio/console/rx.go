package console

import (
	"errors"
	"fmt"
	"sync"

	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/virtio"
)

// waitReason is what a parked feeder waits for.
type waitReason int32

const (
	running     waitReason = iota
	waitInput              // the host's input
	waitOpen               // the guest to open its end
	waitBuffers            // receive buffers
	waitEnded              // nothing: the input ended and the guest was told
	stopped                // the feeder returned
)

// errStopped ends a feeder when Reset stops it.
var errStopped = errors.New("feeder stopped")

// feeder is a port's receive goroutine (§5.3.6): it puts the chunks its
// pump read into the driver's receive buffers while the guest has the
// port open, since Linux throws away what arrives on a closed port. After
// each chunk, or when buffers run out, it interrupts the driver once if
// the ring asks for it. When the input has ended and the guest has every
// byte, it closes the host end (PORT_OPEN 0), so the guest reads EOF.
//
// Between Activate and Reset only this goroutine touches the receiveq;
// Notify reaches it through the port's kick, Reset through quit and done.
type feeder struct {
	d    *Device
	p    *port
	mem  *guestmem.Memory
	q    *virtio.Queue
	irq  virtio.Interrupt
	quit chan struct{} // closed by stop
	done chan struct{} // closed when run returns

	mu     sync.Mutex
	broken error // the receiveq's error; Notify returns it
}

func (d *Device) startFeeder(p *port) *feeder {
	f := &feeder{d: d, p: p, mem: d.mem, q: p.rxq, irq: d.irq,
		quit: make(chan struct{}), done: make(chan struct{})}
	p.setWaiting(running, false)
	p.in.run()
	go f.run()
	return f
}

// stop ends the goroutine and waits for it; it never waits long, as it
// blocks only on channels.
func (f *feeder) stop() {
	close(f.quit)
	<-f.done
}

// err is the receiveq's error, once it broke.
func (f *feeder) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.broken
}

func (f *feeder) run() {
	defer close(f.done)
	defer f.p.setWaiting(stopped, false)
	err := f.loop()
	if errors.Is(err, errStopped) {
		return
	}
	err = fmt.Errorf("virtio-console: port %d receiveq: %w", f.p.id, err)
	if errors.Is(err, virtio.ErrNeedsReset) {
		f.mu.Lock()
		f.broken = err
		f.mu.Unlock()
	}
	f.d.report(err)
}

func (f *feeder) loop() error {
	p := f.p
	for {
		var err error
		switch {
		case len(p.cur) > 0:
			err = f.deliver()
		case p.inputEnded:
			if err := f.d.ctl.hostClosed(p.id); err != nil {
				f.d.report(err) // the control queue's: Notify returns it too
			}
			err = f.park(waitEnded) // kicks only keep the idle bookkeeping right
		default:
			err = f.next()
		}
		if err != nil {
			return err
		}
	}
}

// next takes the next chunk of input, waiting for it, or notes its end.
// A kick meanwhile changes nothing, but is taken so that the feeder
// counts as idle.
func (f *feeder) next() error {
	in := f.p.in
	select {
	case b := <-in.data:
		f.take(b)
		return nil
	case <-in.done:
		f.ended()
		return nil
	default:
	}
	f.p.setWaiting(waitInput, false)
	select {
	case b := <-in.data:
		f.p.setWaiting(running, false)
		f.take(b)
	case <-in.done: // closed after the last chunk was taken
		f.p.setWaiting(running, false)
		f.ended()
	case <-f.p.kick:
		f.p.setWaiting(running, true)
	case <-f.quit:
		return errStopped
	}
	return nil
}

func (f *feeder) take(b []byte) { f.p.chunk, f.p.cur = b, b }

func (f *feeder) ended() {
	f.p.inputEnded = true
	if err := f.p.in.err; err != nil {
		f.d.report(fmt.Errorf("virtio-console: port %d input: %w", f.p.id, err))
	}
}

// deliver puts the current chunk into receive buffers once the guest has
// the port open, waiting for buffers as needed.
func (f *feeder) deliver() error {
	p := f.p
	if !f.d.ctl.guestOpen(p.id) {
		return f.park(waitOpen)
	}
	placed, err := f.place()
	if err != nil {
		return err
	}
	if err := f.signal(); err != nil {
		return err
	}
	if !placed {
		p.stats.rxBufferWaits.Add(1)
		return f.park(waitBuffers)
	}
	p.in.recycle(p.chunk)
	p.chunk, p.cur = nil, nil
	return nil
}

// place fills receive chains with the chunk's bytes, in order, and
// reports whether all of it went before the driver's buffers ran out. A
// chain with device-readable buffers, or none writable (§5.3.6.1), goes
// back unused.
func (f *feeder) place() (bool, error) {
	p := f.p
	for len(p.cur) > 0 {
		c, err := f.q.Pop(f.mem)
		if err != nil || c == nil {
			return false, err
		}
		n := 0
		if c.ReadableLen() == 0 && c.WritableLen() > 0 {
			n, _ = c.Writer().Write(p.cur) // short when the chain is: the rest goes on
			p.cur = p.cur[n:]
		} else {
			f.d.stats.badChains.Add(1)
		}
		if err := f.q.AddUsed(f.mem, c.Head(), uint32(n)); err != nil {
			return false, err
		}
		p.stats.rxBytes.Add(uint64(n))
	}
	return true, nil
}

// signal interrupts the driver if the ring's rules ask for it: EVENT_IDX's
// used_event, or NO_INTERRUPT, and only when buffers were used since the
// last call.
func (f *feeder) signal() error {
	need, err := f.q.NeedsNotification(f.mem)
	if err != nil || !need {
		return err
	}
	if err := f.irq.Signal(RXQueue(f.p.id)); err != nil {
		f.d.report(fmt.Errorf("virtio-console: port %d receive interrupt: %w", f.p.id, err))
	}
	return nil
}

// park waits for a kick, saying why while it waits.
func (f *feeder) park(why waitReason) error {
	f.p.setWaiting(why, false)
	select {
	case <-f.p.kick:
		f.p.setWaiting(running, true)
		return nil
	case <-f.quit:
		return errStopped
	}
}
