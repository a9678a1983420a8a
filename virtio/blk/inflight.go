package blk

import (
	"fmt"

	"github.com/vmm-dev/vmm/virtio"
)

// Requests in flight. Notify pops chains, parses them and queues them on
// pending (under mu), then starts workers, at most d.workers of them. A
// worker takes the oldest pending job (merge.go: one request, or
// adjacent ones merged), runs it without the lock (execute.go, batch.go),
// returns its requests with one AddUsedBatch under the lock, and takes
// the next job until none can start; then it exits, so an idle device has
// no goroutines. Completions therefore come back in any order, and with
// one worker in ring order. The one exception to the hand-off is
// runInline's: a lone job the backend can serve without waiting runs on
// Notify's goroutine.

// popAll moves every available chain onto pending, parsed, but keeps at
// most Queue Size chains in flight: a driver that keeps the rules cannot
// have more outstanding, and one that re-offers chains it has not got
// back waits for its next notification instead of growing pending
// without bound. Parsing here, once, lets takeJob see what may merge.
// The caller holds mu.
func (d *Device) popAll() error {
	limit := int(d.queue.Size())
	for d.inFlight < limit {
		c := d.takeChain()
		ok, err := d.queue.PopInto(d.mem, c)
		if err != nil || !ok {
			d.chains = append(d.chains, c)
			return err
		}
		req, perr := ParseRequest(c, d.sectors)
		d.pending = append(d.pending, entry{c: c, req: req, err: perr})
		d.inFlight++
	}
	return nil
}

// takeChain returns a chain to pop into: one whose request was returned
// (see recycle), or a new one. The caller holds mu.
func (d *Device) takeChain() *virtio.Chain {
	n := len(d.chains)
	if n == 0 {
		return new(virtio.Chain)
	}
	c := d.chains[n-1]
	d.chains[n-1] = nil
	d.chains = d.chains[:n-1]
	return c
}

// recycle keeps the chains of entries, whose requests are returned or
// dropped, for popAll to reuse: PopInto empties a chain before it fills
// it, so nothing of a request reaches the next one that reuses its chain.
// The caller holds mu.
func (d *Device) recycle(entries []entry) {
	for i := range entries {
		d.chains = append(d.chains, entries[i].c)
	}
}

// dispatch starts a worker for each job that can start, up to d.workers
// running in all; workers already running take the rest when they finish.
// The caller holds mu.
func (d *Device) dispatch() {
	for len(d.pending) > 0 && d.running < d.workers {
		s := d.takeScratch()
		if !d.takeJob(s) {
			d.spares = append(d.spares, s)
			return
		}
		d.running++
		go d.work(s)
	}
}

// inlineable reports whether runInline may run what is pending: nothing
// runs, and it all makes one job, so no parallelism is lost by running
// it here. The caller holds mu.
func (d *Device) inlineable() bool {
	return d.nonBlocking != nil && d.running == 0 && len(d.pending) > 0 && d.jobLen() == len(d.pending)
}

// runInline tries the one pending job on Notify's goroutine, with the
// backend's non-blocking calls (Device.tryJob): handing it to a worker
// costs a goroutine start and two switches and, when another thread has
// to wake for it, more than a read from the host's cache. If the try
// fails, a worker runs the job afresh. While it runs it counts as
// running, so Reset waits for it as for a worker's. The caller holds mu,
// which is released during the try.
func (d *Device) runInline() {
	s := d.takeScratch()
	d.takeJob(s) // nothing runs, so nothing holds it back
	d.running++
	d.mu.Unlock()
	done := d.tryJob(s)
	if done {
		d.completing.Add(1)
	}
	d.mu.Lock()
	if !done {
		go d.work(s)
		return
	}
	d.finishJob(s)
	d.exit(s)
}

// takeScratch returns a scratch for a job, reusing one an exited worker
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

// work runs s's job, then pending jobs until none can start (Reset
// empties pending), then exits.
func (d *Device) work(s *scratch) {
	for {
		d.runJob(s)
		d.completing.Add(1)
		d.mu.Lock()
		d.finishJob(s)
		if !d.takeJob(s) {
			break
		}
		d.mu.Unlock()
	}
	d.exit(s)
	d.mu.Unlock()
}

// exit ends a job runner: a worker, or runInline. The caller holds mu.
func (d *Device) exit(s *scratch) {
	d.running--
	d.spares = append(d.spares, s)
	if d.running == 0 {
		d.idle.Broadcast()
	}
}

// finishJob returns s's requests to the driver, lets the jobs that waited
// for it start, and interrupts the driver if it asks. The caller holds
// mu, which signal releases meanwhile.
func (d *Device) finishJob(s *scratch) {
	need := d.complete(s.used)
	d.recycle(s.job)
	d.release(s)
	if need {
		d.signal()
	}
}

// complete returns used to the driver, together, and reports whether to
// interrupt it. Only the last of the runners finishing together asks: one
// that sees another done with its job leaves the interrupt to it, so a
// burst of completions costs one interrupt (NeedsNotification covers
// every entry since the last call) and a lone completion waits for
// nothing. NeedsNotification honours the driver's wishes: with
// VIRTIO_F_EVENT_IDX its used_event, otherwise VIRTQ_AVAIL_F_NO_INTERRUPT.
// The caller holds mu.
func (d *Device) complete(used []virtio.UsedElem) bool {
	d.inFlight -= len(used)
	last := d.completing.Add(-1) == 0
	if d.stopping {
		return false // the driver is resetting the device
	}
	if err := d.queue.AddUsedBatch(d.mem, used); err != nil {
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

// quiesce drops the pending requests and waits until no job runs. The
// caller holds mu, which Wait releases meanwhile.
func (d *Device) quiesce() {
	d.stopping = true
	d.inFlight -= len(d.pending)
	d.recycle(d.pending)
	clear(d.pending)
	d.pending = d.pending[:0]
	for d.running > 0 {
		d.idle.Wait()
	}
	d.stopping = false
}

// takeJob moves the oldest pending request, and those that merge with
// it, into s and marks their extent as running, unless that request
// conflicts with a running job: then nothing starts before it, and the
// runner of the job it waits for takes it when done. The caller holds mu.
func (d *Device) takeJob(s *scratch) bool {
	if len(d.pending) == 0 || d.blocked(extentOf(&d.pending[0])) {
		return false
	}
	n := d.jobLen()
	s.job = append(s.job[:0], d.pending[:n]...)
	s.ext = extentOf(&s.job[0])
	if n > 1 {
		s.ext.end = s.job[n-1].end()
	}
	rest := copy(d.pending, d.pending[n:]) // reuse the array: popAll's appends do not allocate
	clear(d.pending[rest:])
	d.pending = d.pending[:rest]
	d.active = append(d.active, s)
	return true
}

// jobLen is how many pending requests, from the oldest, make its job:
// those that merge (merges) while none conflicts with a running job. Only
// a Vectored backend merges: another takes a call per buffer, and would
// gain nothing but lose the workers' parallelism. The caller holds mu.
func (d *Device) jobLen() int {
	n, bytes := 1, d.pending[0].req.DataLen
	for n < len(d.pending) && d.mergeable(&d.pending[n-1], &d.pending[n], bytes) {
		bytes += d.pending[n].req.DataLen
		n++
	}
	return n
}

// mergeable reports whether next joins the job that ends with prev, of
// bytes so far. A read-only disk's writes do not merge: each is refused
// on its own. The caller holds mu.
func (d *Device) mergeable(prev, next *entry, bytes uint32) bool {
	return d.vectored != nil && merges(prev, next, bytes) &&
		!(d.readOnly && next.req.Type == TypeOut) && !d.blocked(extentOf(next))
}

// blocked reports whether a job of extent x must wait for a running one.
// The caller holds mu.
func (d *Device) blocked(x extent) bool {
	for _, s := range d.active {
		if s.ext.conflicts(x) {
			return true
		}
	}
	return false
}

// release forgets s's job: it no longer runs, and holds back no other.
// The caller holds mu.
func (d *Device) release(s *scratch) {
	for i, a := range d.active {
		if a == s {
			last := len(d.active) - 1
			d.active[i] = d.active[last]
			d.active[last] = nil
			d.active = d.active[:last]
			break
		}
	}
	s.done()
}
