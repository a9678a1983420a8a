package blk

import (
	"fmt"
	"time"

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
// runInline's: a lone job runs on Notify's goroutine when the backend can
// serve it from the host's cache without waiting (a try), or cannot try
// but its blocking calls have been fast; the cost, a queue that takes no
// other request while a slow transfer runs there, is bounded by timing
// those calls.

// popAll moves every available chain onto pending, parsed, but keeps at
// most Queue Size chains in flight: a driver that keeps the rules cannot
// have more outstanding, and one that re-offers chains it has not got
// back waits for its next notification instead of growing pending
// without bound. Parsing here, once, lets takeJob see what may merge.
// The caller holds mu.
func (d *Device) popAll() error {
	limit := int(d.queue.Size())
	for d.inFlight < limit {
		c := d.chains.Take()
		ok, err := d.queue.PopInto(d.mem, c)
		if err != nil || !ok {
			d.chains.Put(c)
			return err
		}
		req, perr := ParseRequest(c, d.sectors)
		d.pending = append(d.pending, entry{c: c, req: req, err: perr})
		d.inFlight++
	}
	return nil
}

// recycle keeps the chains of entries, whose requests are returned or
// dropped, for popAll to reuse: PopInto empties a chain before it fills
// it, so nothing of a request reaches the next one that reuses its chain.
// The caller holds mu.
func (d *Device) recycle(entries []entry) {
	for i := range entries {
		d.chains.Put(entries[i].c)
	}
}

// dispatch starts a worker for each job that can start, up to d.workers
// running in all; workers already running take the rest when they finish.
// The caller holds mu.
func (d *Device) dispatch() {
	for len(d.pending) > 0 && d.running < d.workers {
		s := d.takeScratch()
		if !d.takeJob(s) {
			d.putScratch(s)
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

// Blocking inline transfers (see runInline).
const (
	// slowInline is how long a blocking transfer runInline makes may take
	// before it counts as slow: far longer than a copy from or to the
	// page cache (about 1 µs for 4 KiB, 12 µs for a 64 KiB write here),
	// far shorter than a disk's wait.
	slowInline = 200 * time.Microsecond
	// slowInRow slow transfers one after the other mark the backend as
	// slow. One alone does not: on a busy host a copy into the cache
	// sometimes takes that long too (preempted, or throttled for a moment
	// while dirty pages are written back: 6 in 100,000 4 KiB pwrites here).
	slowInRow = 2
	// slowSkipJobs is how many lone jobs go to workers once the backend
	// is marked slow, before runInline makes a blocking transfer again to
	// see whether it is fast once more.
	slowSkipJobs = 256
)

// inlineWay is how runInline runs a job.
type inlineWay int

const (
	inlineNot   inlineWay = iota // hand it to a worker
	inlineTry                    // with the backend's non-blocking calls (tryJob)
	inlineBlock                  // with the blocking ones (runJob), timed
)

// inlineWay is how runInline may run the job that e opens (a merged job's
// requests are all reads or all writes, like e). A FLUSH, or a write the
// driver takes to be write-through, is handed to a worker: fdatasync
// waits for the disk. A read or write whose direction the backend cannot
// try runs with the blocking calls unless one was slow lately. The rest
// is tried: a read or write from or into the cache, and requests that
// need no backend call. The caller holds mu.
func (d *Device) inlineWay(e *entry) inlineWay {
	write := e.req.Type == TypeOut
	switch {
	case e.err == nil && e.req.Type == TypeFlush && !d.readOnly:
		return inlineNot
	case !e.transfers() || (write && d.readOnly):
		return inlineTry // no backend call
	case write && d.writeThrough:
		return inlineNot
	case d.nonBlocking.CanTry(write):
		return inlineTry
	case d.slowSkips > 0:
		d.slowSkips--
		return inlineNot
	}
	return inlineBlock
}

// runInline runs the one pending job on Notify's goroutine: handing it to
// a worker costs a goroutine start and two switches and, when another
// thread has to wake for it, more than a read from the host's cache or a
// write into it.
//
// Where the backend can try the job's transfer (RWF_NOWAIT), the try
// never waits for a disk: if it fails, a worker runs the job afresh.
// Where it cannot (ext4 refuses RWF_NOWAIT for buffered writes), the job
// runs here with the ordinary blocking calls, as Firecracker runs every
// request on its event loop. That is the trade-off: Notify's caller (the
// queue's goroutine in vmm, woken by the driver's kick) takes no other
// request meanwhile. For a copy into the page cache that costs nothing; for
// a disk that makes the transfer wait it would cost the guest its
// parallelism, since the requests it makes meanwhile could have run at
// once on workers. So each blocking transfer is timed (two readings of a
// monotonic clock), and slowInRow of them slower than slowInline hand the
// next slowSkipJobs lone jobs to workers before another runs here (see
// timed). A FLUSH, and a write-through write, always go to a worker.
//
// A job of one request, the usual lone job, goes through serveLone
// instead, which does the same with less and keeps mu (see lone.go). A
// merged job counts as running while it runs, so Reset waits for it as
// for a worker's. The caller holds mu, which is released meanwhile.
func (d *Device) runInline() {
	way := d.inlineWay(&d.pending[0])
	if way == inlineNot {
		return // dispatch hands it to a worker
	}
	if len(d.pending) == 1 && d.serveLone(way) {
		return // answered, or left on pending for dispatch's worker
	}
	s := d.takeScratch()
	// The job is all that is pending (inlineable): s takes pending's array
	// as it is, and pending s's empty one, so nothing is copied. It joins
	// active only if a worker is to run it: until then no other job can
	// start (nothing else runs, and dispatch waits for Notify).
	s.job, d.pending = d.pending, s.job[:0]
	d.running++
	d.mu.Unlock()
	done, took := true, time.Duration(0)
	if way == inlineBlock {
		start := d.clock()
		d.runJob(s)
		took = d.clock() - start
	} else {
		done = d.tryJob(s)
	}
	d.mu.Lock()
	if way == inlineBlock {
		d.timed(took)
	}
	if !done {
		d.activate(s)
		go d.work(s)
		return
	}
	// No other runner exists to be completing (see complete).
	d.finishJob(s, true)
	d.exit(s)
}

// timed is told how long a blocking transfer that runInline made took,
// and marks the backend as slow after slowInRow slow ones in a row: the next
// slowSkipJobs lone jobs skip runInline (inlineWay). The run of slow ones
// ends only at a fast one, so once marked, one more slow transfer marks
// it again. The caller holds mu.
func (d *Device) timed(took time.Duration) {
	if took <= slowInline {
		d.slowRun = 0
		return
	}
	if d.slowRun++; d.slowRun >= slowInRow {
		d.slowSkips = slowSkipJobs
	}
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

// putScratch keeps s for takeScratch. The caller holds mu.
func (d *Device) putScratch(s *scratch) { d.spares = append(d.spares, s) }

// work runs s's job, then pending jobs until none can start (Reset
// empties pending), then exits.
func (d *Device) work(s *scratch) {
	for {
		d.runJob(s)
		d.completing.Add(1)
		d.mu.Lock()
		d.finishJob(s, false)
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
	d.putScratch(s)
	if d.running == 0 {
		d.idle.Broadcast()
	}
}

// finishJob returns s's requests to the driver, lets the jobs that waited
// for it start, and interrupts the driver if it asks. alone is complete's.
// The caller holds mu, which signal releases meanwhile.
func (d *Device) finishJob(s *scratch, alone bool) {
	need := d.complete(s.used, alone)
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
// nothing. A worker raised completing before it took mu; runInline, the
// only runner alive while it runs, did not and says so with alone.
// NeedsNotification honours the driver's wishes: with VIRTIO_F_EVENT_IDX
// its used_event, otherwise VIRTQ_AVAIL_F_NO_INTERRUPT. The caller holds
// mu.
func (d *Device) complete(used []virtio.UsedElem, alone bool) bool {
	d.inFlight -= len(used)
	last := alone || d.completing.Add(-1) == 0
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
	rest := copy(d.pending, d.pending[n:]) // reuse the array: popAll's appends do not allocate
	clear(d.pending[rest:])
	d.pending = d.pending[:rest]
	d.activate(s)
	return true
}

// activate marks the extent of s's job as running, to order later jobs
// against it (see blocked). The caller holds mu.
func (d *Device) activate(s *scratch) {
	n := len(s.job)
	s.ext = extentOf(&s.job[0])
	if n > 1 {
		s.ext.end = s.job[n-1].end()
	}
	d.active = append(d.active, s)
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

// release forgets s's job: it no longer runs, and holds back no other
// (runInline's was never active). The caller holds mu.
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
