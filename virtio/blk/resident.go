package blk

import (
	"sync/atomic"
	"time"
)

// residentPages remembers which pages of a disk file were recently in the
// host's page cache: those a read or write system call moved whole
// through the cache, and those mincore reported cached. It is what lets
// File copy a transfer to or from its mapping of the file (filemap.go)
// without a system call to ask, and without the copy waiting on the disk. The
// kernel may evict a page at any time, so what it remembers is forgotten
// forgetAfter after it was learnt; a page evicted within that while makes
// the copy read it from the disk, as a blocking pread would.
//
// It is safe for concurrent use: the vCPU's try and the workers' reads
// mark and ask at once. A bit that a forget races with may be lost, which
// only costs a system call.
type residentPages struct {
	chunks      []atomic.Pointer[residentChunk] // one per chunkPages pages; nil: nothing known
	forgetAfter time.Duration
	armed       atomic.Bool // a forget is due; set by mark, cleared by forget
	// afterForget, if set, runs after each forget the timer makes.
	afterForget func()
}

const (
	pageShift  = 12 // the host's 4 KiB pages, the page cache's unit
	pageMask   = 1<<pageShift - 1
	chunkWords = 512
	chunkPages = chunkWords * 64 // 128 MiB of disk per 4 KiB chunk of bits
)

// forgetResident is how long residentPages trusts what it learnt: long
// enough that a disk read block by block learns each page once (mincore
// learns 512 KiB at a time for a sequential stream; a page re-read at
// random costs a pread each time it is learnt again), short enough that a
// page the kernel evicted, or cut off the file, is rarely still counted
// cached. A forget is a timer's goroutine waking up: 10 a second while
// the disk is busy, none while it is idle.
const forgetResident = 100 * time.Millisecond

// residentChunk is a bitmap of chunkPages pages, a bit each.
type residentChunk [chunkWords]atomic.Uint64

// newResidentPages tracks a file of size bytes. Its cost until a page is
// marked is a pointer per 128 MiB of disk; each chunk of bits, 4 KiB, is
// made when a page in it is first marked.
func newResidentPages(size int64, forgetAfter time.Duration) *residentPages {
	pages := (size + 1<<pageShift - 1) >> pageShift
	return &residentPages{
		chunks:      make([]atomic.Pointer[residentChunk], (pages+chunkPages-1)/chunkPages),
		forgetAfter: forgetAfter,
	}
}

// mark records that every page touched by the n bytes at off is in the
// page cache now, and makes sure a forget is due.
func (r *residentPages) mark(off, n int64) {
	r.each(off, n, func(c *atomic.Pointer[residentChunk], word int, mask uint64) bool {
		chunk := c.Load()
		if chunk == nil {
			chunk = new(residentChunk)
			if !c.CompareAndSwap(nil, chunk) {
				chunk = c.Load()
			}
			if chunk == nil { // a forget dropped it meanwhile
				return false
			}
		}
		chunk[word].Or(mask)
		return true
	})
	// After the bits: a forget that cleared armed before this load clears
	// the chunks after it too (see forget), so no bit outlives forgetAfter
	// by more than a timer's lateness.
	if !r.armed.Load() && r.armed.CompareAndSwap(false, true) {
		time.AfterFunc(r.forgetAfter, r.timedForget)
	}
}

// known reports whether every page touched by the n bytes at off was
// marked and not forgotten since.
func (r *residentPages) known(off, n int64) bool {
	return r.each(off, n, func(c *atomic.Pointer[residentChunk], word int, mask uint64) bool {
		chunk := c.Load()
		return chunk != nil && chunk[word].Load()&mask == mask
	})
}

// forget drops everything learnt. It clears armed first, so that a mark
// meanwhile either arms the next forget or has its bits dropped by this
// one.
func (r *residentPages) forget() {
	r.armed.Store(false)
	for i := range r.chunks {
		r.chunks[i].Store(nil)
	}
}

// timedForget is forget, then afterForget: what the timer runs.
func (r *residentPages) timedForget() {
	r.forget()
	if r.afterForget != nil {
		r.afterForget()
	}
}

// each calls f for every word of bits that the pages touched by the n
// bytes at off fall in, with the mask of their bits there, in order, and
// reports whether every call did; a range outside the file, or empty,
// reports false without a call.
func (r *residentPages) each(off, n int64, f func(c *atomic.Pointer[residentChunk], word int, mask uint64) bool) bool {
	if off < 0 || n <= 0 || off > int64(len(r.chunks))*chunkPages<<pageShift-n {
		return false
	}
	first, last := off>>pageShift, (off+n-1)>>pageShift
	for p := first; p <= last; {
		bit := p % 64
		width := min(64-bit, last-p+1)
		mask := ^uint64(0) >> (64 - width) << bit
		if !f(&r.chunks[p/chunkPages], int(p%chunkPages/64), mask) {
			return false
		}
		p += width
	}
	return true
}
