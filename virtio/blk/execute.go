package blk

import (
	"fmt"
	"io"

	"github.com/vmm-dev/vmm/virtio"
)

// Running one request: a worker calls process without the device lock,
// with a bounce buffer of its own, so requests share nothing but the
// backend, whose ReadAt and WriteAt take their own offsets.

// process parses and runs one request, writes its status byte, and
// returns the number of bytes written into the chain for AddUsed. A chain
// without a writable byte has nowhere to put a status: it is returned
// with nothing written.
func (d *Device) process(c *virtio.Chain, buf []byte) uint32 {
	w := c.Writer()
	req, err := ParseRequest(c, d.sectors)
	if err == nil {
		err = d.execute(c, req, w, buf)
	}
	status := Status(err)
	if err != nil {
		d.report(c.Head(), err)
	}
	if c.WritableLen() == 0 {
		return 0
	}
	if err := finish(w, status, buf); err != nil {
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

// execute runs a parsed request; the data goes through buf one chunk at
// a time.
//
// FLUSH covers every write that completed before it was popped, which is
// every write whose completion the driver could have seen before it
// submitted the FLUSH: those writes' pwrite returned before the FLUSH
// reached the backend. Writes still running when the FLUSH runs may or
// may not be covered; §5.2.6 only asks for completed ones, and Linux
// waits for the writes it needs before it sends a flush.
func (d *Device) execute(c *virtio.Chain, req Request, w *virtio.Writer, buf []byte) error {
	switch req.Type {
	case TypeIn:
		return d.read(req, w, buf)
	case TypeOut:
		if d.readOnly {
			return errDiskIsRO
		}
		if err := d.write(c, req, buf); err != nil {
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

// read copies the request's sectors from the backend into the chain.
func (d *Device) read(req Request, w *virtio.Writer, buf []byte) error {
	off := req.Offset()
	for done := uint32(0); done < req.DataLen; {
		p := buf[:min(req.DataLen-done, chunkSize)]
		if _, err := d.backend.ReadAt(p, off+int64(done)); err != nil {
			return fmt.Errorf("read sector %d: %w", req.Sector, err)
		}
		if _, err := w.Write(p); err != nil {
			return err
		}
		done += uint32(len(p))
	}
	return nil
}

// write copies the request's data, after the header, into the backend.
func (d *Device) write(c *virtio.Chain, req Request, buf []byte) error {
	r := c.Reader()
	if _, err := io.ReadFull(r, buf[:HeaderSize]); err != nil {
		return err
	}
	off := req.Offset()
	for done := uint32(0); done < req.DataLen; {
		p := buf[:min(req.DataLen-done, chunkSize)]
		if _, err := io.ReadFull(r, p); err != nil {
			return err
		}
		if _, err := d.backend.WriteAt(p, off+int64(done)); err != nil {
			return fmt.Errorf("write sector %d: %w", req.Sector, err)
		}
		done += uint32(len(p))
	}
	return nil
}

// finish writes status into the chain's last writable byte. Whatever the
// request left unwritten before it (a read that failed half-way, a GET_ID
// buffer longer than the ID) is zero-filled, since a Writer only moves
// forward.
func finish(w *virtio.Writer, status byte, buf []byte) error {
	if w.Remaining() < StatusSize {
		return fmt.Errorf("no room for the status: %w", io.ErrShortWrite) // unreachable: requests stop before it
	}
	zeros := buf[:min(w.Remaining()-StatusSize, chunkSize)]
	clear(zeros)
	for w.Remaining() > StatusSize {
		if _, err := w.Write(zeros[:min(w.Remaining()-StatusSize, uint32(len(zeros)))]); err != nil {
			return err
		}
	}
	_, err := w.Write([]byte{status})
	return err
}
