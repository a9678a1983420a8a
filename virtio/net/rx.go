package net

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/virtio"
)

// aLongTimeAgo is a read deadline that has passed: it wakes a waiting
// ReadPacket and fails the next at once.
var aLongTimeAgo = time.Unix(1, 0)

// errStopped ends the receive goroutine when Reset stops it.
var errStopped = errors.New("receiver stopped")

// receiver is the receive goroutine (§5.1.6.4): it reads a packet from
// the backend, puts it into the driver's receive buffers, and after
// draining what the backend had queued signals the interrupt once. With no
// buffer for a packet it keeps the packet and waits for Notify(RXQueue),
// which leaves the backend's own queue to push back on the sender.
//
// Between Activate and Reset only this goroutine touches the receive
// queue, so the queue needs no lock: Notify reaches the goroutine through
// kick, and Reset through quit, the backend's read deadline, and done.
type receiver struct {
	backend  Backend
	mem      *guestmem.Memory
	q        *virtio.Queue
	irq      virtio.Interrupt
	features uint64
	stats    *counters
	onError  func(error)
	buf      []byte // the packet being delivered: header, then frame
	kick     <-chan struct{}
	quit     chan struct{} // closed by stop
	done     chan struct{} // closed when the goroutine returns

	// With VIRTIO_NET_F_MRG_RXBUF, the chains popped for the packet in
	// buf, held until it fits, and their writable bytes.
	gathered []*virtio.Chain
	used     []virtio.UsedElem // scratch for fill: the gathered chains as used entries
	room     uint64
	spare    virtio.ChainPool // chains returned to the driver, popped into again

	mu     sync.Mutex
	broken error // the receive queue's error; Notify returns it
}

// startReceiver starts the receive goroutine on q.
func (d *Device) startReceiver(mem *guestmem.Memory, q *virtio.Queue, irq virtio.Interrupt, features uint64) *receiver {
	r := &receiver{
		backend:  d.backend,
		mem:      mem,
		q:        q,
		irq:      irq,
		features: features,
		stats:    &d.stats,
		onError:  d.onError,
		buf:      d.rxBuf,
		kick:     d.kick,
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
		gathered: make([]*virtio.Chain, 0, q.Config().Size),
	}
	go r.run()
	return r
}

// stop ends the goroutine and waits for it, even while it waits in the
// backend or for buffers.
func (r *receiver) stop() {
	close(r.quit)
	r.backend.SetReadDeadline(aLongTimeAgo) // Activate checked that deadlines work
	<-r.done
}

// err is the receive queue's error, once it broke.
func (r *receiver) err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.broken
}

func (r *receiver) stopping() bool {
	select {
	case <-r.quit:
		return true
	default:
		return false
	}
}

func (r *receiver) run() {
	defer close(r.done)
	for {
		n, err := r.next()
		if r.stopping() {
			return
		}
		if err == nil {
			err = r.deliver(r.buf[:n])
		}
		if errors.Is(err, errStopped) {
			return
		}
		if err != nil {
			r.fail(err)
			return
		}
	}
}

// fail records why the goroutine stops: a broken queue for Notify to
// return, anything else only for OnError.
func (r *receiver) fail(err error) {
	if errors.Is(err, virtio.ErrNeedsReset) {
		r.mu.Lock()
		r.broken = err
		r.mu.Unlock()
	}
	r.report(fmt.Errorf("virtio-net: receive: %w", err))
}

func (r *receiver) report(err error) {
	if r.onError != nil {
		r.onError(err)
	}
}

// next reads the next packet into buf: without waiting while the backend
// has one queued; otherwise it first tells the driver about the packets
// delivered so far, then waits.
func (r *receiver) next() (int, error) {
	n, err := r.backend.TryReadPacket(r.buf)
	if errors.Is(err, ErrNoPacket) {
		if err := r.signal(); err != nil {
			return 0, err
		}
		n, err = r.backend.ReadPacket(r.buf)
	}
	if err != nil {
		return 0, fmt.Errorf("backend read: %w", err)
	}
	return n, nil
}

// signal interrupts the driver if the ring's rules ask for it: EVENT_IDX's
// used_event, or NO_INTERRUPT, and only when buffers were used since the
// last call.
func (r *receiver) signal() error {
	need, err := r.q.NeedsNotification(r.mem)
	if err != nil || !need {
		return err
	}
	if err := r.irq.Signal(RXQueue); err != nil {
		r.report(fmt.Errorf("virtio-net: receive interrupt: %w", err))
	}
	return nil
}

// deliver puts pkt into receive buffers, waiting for the driver to post
// some if needed. A packet the driver cannot take is dropped and counted.
func (r *receiver) deliver(pkt []byte) error {
	if err := prepareRX(pkt, r.features); err != nil {
		r.stats.rxDrop(err)
		return nil
	}
	for {
		placed, err := r.place(pkt)
		if err != nil || placed {
			return err
		}
		// Let the driver see what was used, so it can refill, then wait.
		if err := r.signal(); err != nil {
			return err
		}
		r.stats.rxBufferWaits.Add(1)
		select {
		case <-r.kick:
		case <-r.quit:
			return errStopped
		}
	}
}

// place puts pkt into the receive queue, or reports that the driver has
// not posted enough buffers yet.
func (r *receiver) place(pkt []byte) (bool, error) {
	if r.features&FeatureMrgRxbuf == 0 {
		return r.placeOne(pkt)
	}
	return r.placeMerged(pkt)
}

// placeOne puts pkt into one chain, num_buffers 1 (§5.1.6.4.1). A chain
// too small for it gets nothing and the packet is dropped: a chain cannot
// be handed back unread, and a cut packet is worse than a lost one.
func (r *receiver) placeOne(pkt []byte) (bool, error) {
	c, err := r.pop()
	if err != nil || c == nil {
		return false, err
	}
	if uint64(c.WritableLen()) < uint64(len(pkt)) {
		r.stats.rxDropTooBig.Add(1)
		r.spare.Put(c)
		return true, r.q.AddUsed(r.mem, c.Head(), 0)
	}
	setNumBuffers(pkt, 1)
	r.gathered = append(r.gathered, c)
	return true, r.fill(pkt)
}

// placeMerged spreads pkt over as many chains as it needs, num_buffers
// of them, every one but the last filled (§5.1.6.4.1). Chains popped
// before the driver ran out are held until the rest arrive.
func (r *receiver) placeMerged(pkt []byte) (bool, error) {
	for r.room < uint64(len(pkt)) {
		if len(r.gathered) == int(r.q.Config().Size) {
			// Every buffer the ring can hold is here, and still too
			// small: waiting for more would wait forever.
			r.stats.rxDropTooBig.Add(1)
			return true, r.returnGathered()
		}
		c, err := r.pop()
		if err != nil || c == nil {
			return false, err
		}
		r.gathered = append(r.gathered, c)
		r.room += uint64(c.WritableLen())
	}
	setNumBuffers(pkt, uint16(len(r.gathered))) // at most the queue size, 32768
	return true, r.fill(pkt)
}

// pop returns the next receive chain fit for a packet, or nil when the
// driver has posted none. A chain with device-readable buffers, or with
// no room for a header (§5.1.6.3.1), is the driver's mistake: it goes
// back unused and the next one is tried.
func (r *receiver) pop() (*virtio.Chain, error) {
	c := r.spare.Take()
	for {
		ok, err := r.q.PopInto(r.mem, c)
		if err != nil || !ok {
			r.spare.Put(c)
			return nil, err
		}
		if c.ReadableLen() == 0 && c.WritableLen() >= HeaderSize {
			return c, nil
		}
		r.stats.rxBadChains.Add(1)
		if err := r.q.AddUsed(r.mem, c.Head(), 0); err != nil {
			r.spare.Put(c)
			return nil, err
		}
	}
}

// fill writes pkt across the gathered chains in order and returns them
// to the driver in one step, so a driver reading the used ring never sees
// part of a merged packet (§5.1.6.4.1).
func (r *receiver) fill(pkt []byte) error {
	frame := uint64(len(pkt) - HeaderSize)
	used := r.used[:0]
	for _, c := range r.gathered {
		k := min(uint64(len(pkt)), uint64(c.WritableLen()))
		w := c.Writer()
		w.Write(pkt[:k]) // cannot fail: the chain was validated and k fits
		pkt = pkt[k:]
		used = append(used, virtio.UsedElem{Head: c.Head(), Written: w.Written()})
	}
	r.used = used
	if err := r.q.AddUsedBatch(r.mem, used); err != nil {
		return err
	}
	r.forget()
	r.stats.rxPackets.Add(1)
	r.stats.rxBytes.Add(frame)
	return nil
}

// returnGathered hands the held chains back unused.
func (r *receiver) returnGathered() error {
	for _, c := range r.gathered {
		if err := r.q.AddUsed(r.mem, c.Head(), 0); err != nil {
			return err
		}
	}
	r.forget()
	return nil
}

// forget drops the gathered chains, which the driver has back, keeping
// them to pop into again.
func (r *receiver) forget() {
	for _, c := range r.gathered {
		r.spare.Put(c)
	}
	clear(r.gathered)
	r.gathered = r.gathered[:0]
	r.room = 0
}
