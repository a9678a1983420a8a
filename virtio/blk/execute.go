package blk

import (
	"fmt"
	"io"

	"github.com/vmm-dev/vmm/virtio"
)

// Running one request: process runs without the device lock, with a
// scratch of its own, so requests share nothing but the backend, whose
// calls take their own offsets. Data moves between the backend and the
// guest's buffers directly (preadv/pwritev on guest memory), never through
// a host buffer.

// maxBufs bounds the guest buffers one backend call takes, well under
// IOV_MAX (1024); a request with more goes in several calls.
const maxBufs = 64

// scratch is what a job in progress needs besides its chains: the job,
// room for the slices of guest memory a backend call takes, and what to
// return to the driver. One runner uses it at a time; it is reused.
type scratch struct {
	bufs    [][]byte
	job     []entry           // the requests, in ring order
	ext     extent            // what the job touches, while it runs
	writers []virtio.Writer   // a merged job's, one per request (batch.go)
	used    []virtio.UsedElem // the job's requests, done
}

// done drops the job's chains once it is returned, so the scratch keeps
// nothing of the driver's alive.
func (s *scratch) done() {
	if len(s.job) == 1 {
		s.job[0] = entry{} // the usual job: stores, where clear calls memclr
	} else {
		clear(s.job)
	}
	s.job = s.job[:0]
	clear(s.writers)
	s.writers = s.writers[:0]
}

// take returns s.bufs emptied, for Reader.Buffers or Writer.Buffers.
func (s *scratch) take() [][]byte { return s.bufs[:0] }

// keep stores bufs for reuse, without the guest memory they point at: once
// the device is reset that memory may be unmapped, and a stale pointer
// into it must not outlive the request.
func (s *scratch) keep(bufs [][]byte) {
	if len(bufs) == 1 {
		bufs[0] = nil // as in done
	} else {
		clear(bufs)
	}
	s.bufs = bufs[:0]
}

// process runs one parsed request, writes its status byte, and
// returns the number of bytes written into the chain for AddUsed. A chain
// without a writable byte has nowhere to put a status: it is returned
// with nothing written.
func (d *Device) process(e *entry, s *scratch) uint32 {
	w := e.c.Writer()
	err := e.err
	if err == nil {
		err = d.execute(e.c, e.req, w, s)
	}
	return d.conclude(e.c, w, err, s)
}

// try is process for a NonBlocking backend, without waiting: it reports
// false, with no status written and nothing returned to the driver, when
// the request needs a call that may wait (a read or write the backend
// could not make at once, a flush, a write-through write); the request is
// then processed afresh on a worker. Reads and writes are idempotent, so
// a try that moved part of the data changes nothing the redo does not.
func (d *Device) try(e *entry, s *scratch) (uint32, bool) {
	c, req, err := e.c, e.req, e.err
	w := c.Writer()
	if err == nil {
		switch {
		case req.Type == TypeIn:
			if !d.tryTransfer(req, nil, w, s) {
				return 0, false
			}
		case req.Type == TypeOut && !d.readOnly:
			if d.writeThrough || !d.tryTransfer(req, dataReader(c), nil, s) {
				return 0, false
			}
		case req.Type == TypeFlush && !d.readOnly:
			return 0, false
		default: // GET_ID, or refused on a read-only disk: no backend call
			err = d.execute(c, req, w, s)
		}
	}
	return d.conclude(c, w, err, s), true
}

// tryTransfer moves req's data with the backend's non-blocking calls:
// into w for a read, from r (dataReader) for a write (w nil).
func (d *Device) tryTransfer(req Request, r *virtio.Reader, w *virtio.Writer, s *scratch) bool {
	off := req.Offset()
	for left := req.DataLen; left > 0; {
		var bufs [][]byte
		var n uint32
		var err error
		if w != nil {
			bufs, n, err = w.Buffers(s.take(), left, maxBufs)
		} else {
			bufs, n, err = r.Buffers(s.take(), left, maxBufs)
		}
		ok := err == nil && n > 0
		if ok && w != nil {
			ok = d.nonBlocking.TryReadvAt(bufs, off)
		} else if ok {
			ok = d.nonBlocking.TryWritevAt(bufs, off)
		}
		s.keep(bufs)
		if !ok {
			return false
		}
		off += int64(n)
		left -= n
	}
	return true
}

// conclude writes the status err earns after the request's data and
// returns the length for AddUsed.
func (d *Device) conclude(c *virtio.Chain, w *virtio.Writer, err error, s *scratch) uint32 {
	status := Status(err)
	if err != nil {
		d.report(c.Head(), err)
	}
	if c.WritableLen() == 0 {
		return 0
	}
	if err := finish(w, status, s); err != nil {
		d.report(c.Head(), err) // unreachable: the chain was validated
	}
	return w.Written()
}

// report passes a failed request's error to Options.OnError, one call at
// a time.
func (d *Device) report(head uint16, err error) {
	if d.onError == nil {
		return
	}
	d.reportMu.Lock()
	defer d.reportMu.Unlock()
	d.onError(head, err)
}

// execute runs a parsed request.
//
// FLUSH covers every write that completed before it was popped, which is
// every write whose completion the driver could have seen before it
// submitted the FLUSH: those writes' pwrite returned before the FLUSH
// reached the backend. Writes still running when the FLUSH runs may or
// may not be covered; §5.2.6 only asks for completed ones, and Linux
// waits for the writes it needs before it sends a flush.
func (d *Device) execute(c *virtio.Chain, req Request, w *virtio.Writer, s *scratch) error {
	switch req.Type {
	case TypeIn:
		return d.read(req, w, s)
	case TypeOut:
		if d.readOnly {
			return errDiskIsRO
		}
		if err := d.write(c, req, s); err != nil {
			return err
		}
		if d.writeThrough {
			return d.backend.Flush()
		}
		return nil
	case TypeFlush:
		if d.readOnly {
			return nil // nothing was written
		}
		return d.backend.Flush()
	case TypeGetID:
		_, err := w.Write(d.id[:])
		return err
	}
	return fmt.Errorf("%w: %d", ErrUnsupported, req.Type) // unreachable: ParseRequest refused it
}

// read reads the request's sectors from the backend straight into the
// chain's writable buffers, up to maxBufs of them a call. Buffers whose
// read failed are zeroed: they count as written, and must not pass off the
// guest's old bytes, or part of a read, as the disk's.
func (d *Device) read(req Request, w *virtio.Writer, s *scratch) error {
	off := req.Offset()
	for left := req.DataLen; left > 0; {
		bufs, n, err := w.Buffers(s.take(), left, maxBufs)
		if err == nil && n == 0 {
			err = io.ErrShortWrite // unreachable: ParseRequest counted the buffers
		}
		if err == nil {
			if err = d.readBuffers(bufs, off); err != nil {
				zero(bufs)
				err = fmt.Errorf("read sector %d: %w", req.Sector, err)
			}
		}
		s.keep(bufs)
		if err != nil {
			return err
		}
		off += int64(n)
		left -= n
	}
	return nil
}

// write writes the request's data, the readable bytes after the header,
// from the chain's buffers straight to the backend.
func (d *Device) write(c *virtio.Chain, req Request, s *scratch) error {
	r := dataReader(c)
	off := req.Offset()
	for left := req.DataLen; left > 0; {
		bufs, n, err := r.Buffers(s.take(), left, maxBufs)
		if err == nil && n == 0 {
			err = io.ErrUnexpectedEOF // unreachable: ParseRequest counted the buffers
		}
		if err == nil {
			if err = d.writeBuffers(bufs, off); err != nil {
				err = fmt.Errorf("write sector %d: %w", req.Sector, err)
			}
		}
		s.keep(bufs)
		if err != nil {
			return err
		}
		off += int64(n)
		left -= n
	}
	return nil
}

// finish writes status into the chain's last writable byte. Whatever the
// request left unwritten before it (a read that failed half-way, a GET_ID
// buffer longer than the ID) is zero-filled, since a Writer only moves
// forward.
func finish(w *virtio.Writer, status byte, s *scratch) error {
	if w.Remaining() < StatusSize {
		return fmt.Errorf("no room for the status: %w", io.ErrShortWrite) // unreachable: requests stop before it
	}
	for w.Remaining() > StatusSize {
		bufs, n, err := w.Buffers(s.take(), w.Remaining()-StatusSize, maxBufs)
		zero(bufs)
		s.keep(bufs)
		if err == nil && n == 0 {
			err = io.ErrShortWrite // unreachable: Remaining counts the buffers
		}
		if err != nil {
			return err
		}
	}
	return w.WriteByte(status)
}

// zero clears every byte of bufs.
func zero(bufs [][]byte) {
	for _, b := range bufs {
		clear(b)
	}
}
