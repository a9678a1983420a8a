package blk

import (
	"fmt"

	"github.com/vmm-dev/vmm/virtio"
)

// The lone request: a driver that waits for each request before it makes
// the next (a guest reading a file block by block, fsync after fsync) has
// one request in flight at a time, and for it the device's own work is
// most of what it adds to the host's transfer. runInline answers such a
// request through serveLone: the same checks and the same transfer as a
// job's (try, or the blocking calls, timed), but with mu held throughout
// and no scratch, job list or completion count, since nothing else runs.
// Holding mu across the transfer keeps nothing waiting: no worker runs,
// the transport serialises Notify, and Reset would wait for this request
// as for a worker's. In the model bench (bench/blk_model.go, 8 alternating
// runs) it took a lone 4 KiB read from the page cache from 1.96 to 1.73 µs
// (medians), against 1.2 µs for the host's own pread.

// loneWay is what serveLone did with the request.
type loneWay int

const (
	loneDone   loneWay = iota // answered, and returned to the driver
	loneWorker                // a try would have waited: a worker runs it afresh
	loneJob                   // not its kind (see serveLone): runInline's job path takes it
)

// serveLone runs the one pending request, a sound read or write, the way
// inlineWay chose (a try or a timed blocking transfer), writes its status
// and returns it to the driver, interrupting it if it asks. A request
// with more data buffers than one call takes, and any other kind (a
// FLUSH, GET_ID, a malformed request, a write to a read-only disk), it
// leaves to the job path, which handles them all. The caller holds mu,
// which signal releases meanwhile.
func (d *Device) serveLone(way inlineWay) loneWay {
	e := &d.pending[0]
	write := e.req.Type == TypeOut
	if !e.transfers() || (write && d.readOnly) {
		return loneJob
	}
	c, off := e.c, e.req.Offset()
	w := c.Writer()
	var bufs [][]byte
	var n uint32
	if write {
		bufs, n, _ = dataReader(c).Buffers(d.loneBufs[:0], e.req.DataLen, maxBufs)
	} else {
		bufs, n, _ = w.Buffers(d.loneBufs[:0], e.req.DataLen, maxBufs)
	}
	defer clear(bufs) // no pointer into guest memory outlives the request
	if n != e.req.DataLen {
		return loneJob
	}
	var err error
	switch {
	case way == inlineTry && write:
		if !d.nonBlocking.TryWritevAt(bufs, off) {
			return loneWorker
		}
	case way == inlineTry:
		if !d.nonBlocking.TryReadvAt(bufs, off) {
			return loneWorker
		}
	default: // inlineBlock
		start := d.clock()
		if write {
			if err = d.writeBuffers(bufs, off); err != nil {
				err = fmt.Errorf("write sector %d: %w", e.req.Sector, err)
			}
		} else if err = d.readBuffers(bufs, off); err != nil {
			zero(bufs) // as read does: no old guest bytes pass for the disk's
			err = fmt.Errorf("read sector %d: %w", e.req.Sector, err)
		}
		d.timed(d.clock() - start)
	}
	if err != nil {
		d.report(c.Head(), err)
	}
	w.WriteByte(Status(err)) // the last writable byte: ParseRequest checked it is there
	d.loneUsed[0] = virtio.UsedElem{Head: c.Head(), Written: w.Written()}
	d.chains.Put(c)
	d.pending[0] = entry{}
	d.pending = d.pending[:0]
	d.inFlight--
	if err := d.queue.AddUsedBatch(d.mem, d.loneUsed[:]); err != nil {
		d.record(err)
		return loneDone
	}
	need, qerr := d.queue.NeedsNotification(d.mem)
	if qerr != nil {
		d.record(qerr)
	} else if need {
		d.signal()
	}
	return loneDone
}
