package blk

import "github.com/vmm-dev/vmm/virtio"

// Running a job (merge.go): one request as process or try does, or
// several merged into one transfer over all their data buffers. A merged
// transfer that fails or falls short answers nothing: its requests run
// again one by one, so each gets the status its own sectors earn and no
// request is OK for bytes that did not move. Reads and writes are
// idempotent, so running them again changes nothing the first attempt
// did not.

// runJob runs s's job on a worker and leaves in s.used what to return.
func (d *Device) runJob(s *scratch) {
	s.used = s.used[:0]
	if len(s.job) > 1 && d.runMerged(s, false) {
		return
	}
	for i := range s.job {
		e := &s.job[i]
		s.used = append(s.used, virtio.UsedElem{Head: e.c.Head(), Written: d.process(e, s)})
	}
}

// tryJob is runJob with the backend's non-blocking calls, for runInline:
// it reports false, having answered none of the requests, when a call
// would have waited or failed; a worker then runs the job afresh.
func (d *Device) tryJob(s *scratch) bool {
	s.used = s.used[:0]
	if len(s.job) > 1 {
		return d.runMerged(s, true)
	}
	e := &s.job[0]
	written, ok := d.try(e, s)
	if ok {
		s.used = append(s.used, virtio.UsedElem{Head: e.c.Head(), Written: written})
	}
	return ok
}

// runMerged moves the data of s's job, adjacent reads or adjacent
// writes, in as few backend calls as IOV_MAX allows, then answers every
// request: OK, or for write-through writes what their one flush earned.
// It reports false, having answered none, when a call failed or fell
// short, or when trying, would have waited.
func (d *Device) runMerged(s *scratch, try bool) bool {
	write := s.job[0].req.Type == TypeOut
	if try && write && d.writeThrough {
		return false // a flush can wait
	}
	if !d.transferMerged(s, write, try) {
		return false
	}
	var err error
	if write && d.writeThrough {
		err = d.backend.Flush() // one flush makes all of them durable
	}
	for i := range s.job {
		c := s.job[i].c
		s.used = append(s.used, virtio.UsedElem{Head: c.Head(), Written: d.conclude(c, &s.writers[i], err, s)})
	}
	return true
}

// transferMerged gathers the data buffers of s's requests, in order,
// and moves them with one call per maxMergeBufs buffers. It leaves in
// s.writers each request's Writer, past a read's data, where its status
// goes.
func (d *Device) transferMerged(s *scratch, write, try bool) bool {
	bufs, off, ok := s.take(), s.job[0].req.Offset(), true
	var gathered int64 // bytes in bufs
	s.writers = s.writers[:0]
	for i := 0; ok && i < len(s.job); i++ {
		e := &s.job[i]
		s.writers = append(s.writers, *e.c.Writer())
		start := len(bufs)
		var n uint32
		if bufs, n = gather(e, &s.writers[i], bufs, write); n == e.req.DataLen {
			gathered += int64(n)
			continue
		}
		// IOV_MAX reached: move what came before e, then gather e again.
		clear(bufs[start:])
		bufs = bufs[:start]
		ok = start > 0 && d.transferBufs(bufs, off, write, try)
		off += gathered
		clear(bufs)
		s.writers[i] = *e.c.Writer()
		bufs, n = gather(e, &s.writers[i], bufs[:0], write)
		ok = ok && n == e.req.DataLen // else e alone has more than IOV_MAX
		gathered = int64(n)
	}
	ok = ok && d.transferBufs(bufs, off, write, try)
	s.keep(bufs)
	return ok
}

// gather appends to bufs the guest buffers of e's data, up to
// maxMergeBufs in all, and returns how many bytes they cover: all of e's,
// or fewer when they did not fit. A read's come from w, which is left
// before the status; a write's are the readable bytes after the header.
func gather(e *entry, w *virtio.Writer, bufs [][]byte, write bool) ([][]byte, uint32) {
	room := maxMergeBufs - len(bufs)
	var n uint32
	var err error
	if write {
		bufs, n, err = dataReader(e.c).Buffers(bufs, e.req.DataLen, room)
	} else {
		bufs, n, err = w.Buffers(bufs, e.req.DataLen, room)
	}
	if err != nil {
		return bufs, 0 // unreachable: the chain was validated
	}
	return bufs, n
}

// transferBufs makes one merged transfer of bufs at off, with the
// backend's non-blocking calls when trying, and reports whether all of
// it moved.
func (d *Device) transferBufs(bufs [][]byte, off int64, write, try bool) bool {
	switch {
	case try && write:
		return d.nonBlocking.TryWritevAt(bufs, off)
	case try:
		return d.nonBlocking.TryReadvAt(bufs, off)
	case write:
		return d.writeBuffers(bufs, off) == nil
	}
	return d.readBuffers(bufs, off) == nil
}
