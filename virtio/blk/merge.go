package blk

import "github.com/vmm-dev/vmm/virtio"

// Merging and ordering. Popped requests wait on pending in ring order and
// leave it in that order, as jobs: one request, or a run of adjacent
// reads or writes, each starting at the sector where the one before it
// ended, that becomes one preadv/pwritev over all their data buffers (as
// QEMU's virtio_blk_submit_multireq). Merging never reorders: only
// neighbours in ring order merge, so a FLUSH, a GET_ID, a malformed
// request or a request of the other direction between two writes keeps
// them apart.
//
// Jobs run at once on several workers, but a job starts only when it
// conflicts with none that runs (see extent.conflicts), and the oldest
// pending job goes first: a FLUSH waits for every earlier request and
// holds back every later one, and a read or write of sectors that an
// earlier write is still writing waits for it (and a write, for earlier
// reads of its sectors). So the backend sees conflicting requests in
// ring order, whatever the number of workers.

const (
	// maxMergeBufs bounds the buffers one merged call takes: IOV_MAX, the
	// most preadv and pwritev accept.
	maxMergeBufs = 1024
	// maxMergeBytes bounds a merged job's data, so one job does not hold
	// a worker (or Notify) for long: 16 requests of 64 KiB.
	maxMergeBytes = 1 << 20
)

// entry is a popped request: its chain and what ParseRequest made of it.
type entry struct {
	c   *virtio.Chain
	req Request
	err error // ParseRequest's: the request is answered with its status
}

// transfers reports whether e moves data to or from the backend: a sound
// read or write with data.
func (e *entry) transfers() bool {
	return e.err == nil && (e.req.Type == TypeIn || e.req.Type == TypeOut) && e.req.DataLen > 0
}

// end is the sector after e's last.
func (e *entry) end() uint64 { return e.req.Sector + uint64(e.req.DataLen>>sectorShift) }

// extent is what a running job may touch on the disk, for ordering.
type extent struct {
	barrier    bool // a FLUSH: ordered against every other job
	write      bool
	start, end uint64 // sectors [start, end) it reads or writes
}

// extentOf is e's extent. Requests that do not reach the backend (GET_ID,
// malformed ones, empty transfers) touch nothing: they need no order.
func extentOf(e *entry) extent {
	switch {
	case e.err == nil && e.req.Type == TypeFlush:
		return extent{barrier: true}
	case !e.transfers():
		return extent{}
	}
	return extent{write: e.req.Type == TypeOut, start: e.req.Sector, end: e.end()}
}

// conflicts reports whether a and b must not run at once: either is a
// FLUSH, or they share a sector and one of them writes it.
func (a extent) conflicts(b extent) bool {
	if a.barrier || b.barrier {
		return true
	}
	return (a.write || b.write) && a.start < b.end && b.start < a.end
}

// merges reports whether next can join a job that ends with prev: both
// sound transfers the same way, next starting where prev ended, and the
// job's data, bytes so far, staying under maxMergeBytes.
func merges(prev, next *entry, bytes uint32) bool {
	return next.transfers() && prev.transfers() &&
		next.req.Type == prev.req.Type &&
		next.req.Sector == prev.end() &&
		uint64(bytes)+uint64(next.req.DataLen) <= maxMergeBytes
}
