package blk

import (
	"fmt"
	"slices"

	"github.com/vmm-dev/vmm/virtio"
)

// Requests in flight. Notify pops chains onto pending (under mu) and
// starts workers, at most d.workers of them. A worker takes the oldest
// pending chain, runs it without the lock (execute.go), then returns it
// with AddUsed under the lock, and loops until nothing is pending; then
// it exits, so an idle device has no goroutines. Completions therefore
// come back in any order, and with one worker in ring order. The one
// exception to the hand-off is runLone's: a lone request the backend can
// serve without waiting runs on Notify's goroutine.

// popAll moves every available chain onto pending, but keeps at most
// Queue Size chains in flight: a driver that keeps the rules cannot have
// more outstanding, and one that re-offers chains it has not got back
// waits for its next notification instead of growing pending without
// bound. The caller holds mu.
func (d *Device) popAll() error {
	limit := int(d.queue.Config().Size)
	for d.inFlight < limit {
		c, err := d.queue.Pop(d.mem)
		if err != nil || c == nil {
			return err
		}
		d.pending = append(d.pending, c)
		d.inFlight++
	}
	return nil
}

// dispatch starts a worker for each pending chain, up to d.workers in
// all; workers already running take the rest when they finish. The
// caller holds mu.
func (d *Device) dispatch() {
	for n := min(d.workers-d.running, len(d.pending)); n > 0; n-- {
		d.running++
		go d.work(d.takeScratch())
	}
}

// runLone tries the one pending request on Notify's goroutine, with the
// backend's non-blocking calls (Device.try), while no worker runs: handing
// it to a worker costs a goroutine start and two switches and, when
// another thread has to wake for it, more than a read from the host's
// cache. If the try fails, the request stays pending for a worker. While
// it runs it counts as running, so Reset waits for it as for a worker's.
// The caller holds mu, which is released during the try.
func (d *Device) runLone() {
	c := d.takePending()
	d.running++
	d.mu.Unlock()
	written, done := d.try(c, &d.lone)
	if done {
		d.completing.Add(1)
	}
	d.mu.Lock()
	d.running--
	if !done {
		d.pending = slices.Insert(d.pending, 0, c)
	} else if d.complete(c, written) {
		d.signal()
	}
	if d.running == 0 {
		d.idle.Broadcast()
	}
}

// takePending removes and returns the oldest pending chain. It moves the
// rest down rather than reslicing past it, so the array is reused and
// popAll's appends do not allocate. The caller holds mu.
func (d *Device) takePending() *virtio.Chain {
	c := d.pending[0]
	n := copy(d.pending, d.pending[1:])
	d.pending[n] = nil
	d.pending = d.pending[:n]
	return c
}

// takeScratch returns a scratch for a worker, reusing one an exited worker
// left. The caller holds mu.
func (d *Device) takeScratch() *scratch {
	n := len(d.spares)
	if n == 0 {
		return &scratch{bufs: make([][]byte, 0, maxBufs)}
	}
	s := d.spares[n-1]
	d.spares = d.spares[:n-1]
	return s
}

// work runs pending requests until there are none (Reset empties
// pending), then exits.
func (d *Device) work(s *scratch) {
	d.mu.Lock()
	for len(d.pending) > 0 {
		c := d.takePending()
		d.mu.Unlock()
		written := d.process(c, s)
		d.completing.Add(1)
		d.mu.Lock()
		if d.complete(c, written) {
			d.signal()
		}
	}
	d.running--
	d.spares = append(d.spares, s)
	if d.running == 0 {
		d.idle.Broadcast()
	}
	d.mu.Unlock()
}

// complete returns c to the driver and reports whether to interrupt it.
// Only the last of the workers finishing together asks: a worker that
// sees another one done with its request leaves the interrupt to it, so
// a burst of completions costs one interrupt (NeedsNotification covers
// every entry since the last call) and a lone completion waits for
// nothing. The caller holds mu.
func (d *Device) complete(c *virtio.Chain, written uint32) bool {
	d.inFlight--
	last := d.completing.Add(-1) == 0
	if d.stopping {
		return false // the driver is resetting the device
	}
	if err := d.queue.AddUsed(d.mem, c.Head(), written); err != nil {
		d.record(err)
		return false
	}
	if !last {
		return false
	}
	need, err := d.queue.NeedsNotification(d.mem)
	if err != nil {
		d.record(err)
		return false
	}
	return need
}

// signal interrupts the driver. It releases mu meanwhile: the transport's
// Signal takes its own lock and may inject an MSI, and completions need
// not queue behind it. The caller holds mu.
func (d *Device) signal() {
	irq := d.irq
	d.mu.Unlock()
	err := irq.Signal(0)
	d.mu.Lock()
	if err != nil {
		d.record(fmt.Errorf("signal used buffers: %w", err))
	}
}

// record keeps the first error the workers met for the next Notify. The
// caller holds mu.
func (d *Device) record(err error) {
	if d.err == nil {
		d.err = err
	}
}

// quiesce drops the pending chains and waits until no worker runs. The
// caller holds mu, which Wait releases meanwhile.
func (d *Device) quiesce() {
	d.stopping = true
	d.inFlight -= len(d.pending)
	clear(d.pending)
	d.pending = nil
	for d.running > 0 {
		d.idle.Wait()
	}
	d.stopping = false
}
