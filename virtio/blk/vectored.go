package blk

import (
	"errors"
	"io"
)

// Vectored is a Backend that can move one transfer between the disk and
// several buffers in one call (preadv/pwritev). The device hands it the
// guest's own buffers, so data is never copied through host memory of its
// own. As with ReadAt and WriteAt, a short transfer comes with an error.
// Neither method keeps bufs or changes its elements.
type Vectored interface {
	ReadvAt(bufs [][]byte, off int64) (int, error)
	WritevAt(bufs [][]byte, off int64) (int, error)
}

// NonBlocking is a Backend over the host's page cache that can try a
// transfer without waiting: from and into the cache, giving up at once
// where it would wait for the disk (RWF_NOWAIT). The device tries a lone
// request this way on the goroutine that called Notify, and hands it to a
// worker only when the try fails: one request at a time served from the
// cache is where the hand-off costs most. Where the backend cannot try
// (CanTry), the device makes the lone request's transfer there with the
// blocking calls instead, timed, as long as they stay fast (see
// Device.runInline).
type NonBlocking interface {
	// TryReadvAt reads all of bufs from off and reports true, or reports
	// false, having read none, some or all of them, when it would have
	// had to wait or failed for any reason: the device then reads them
	// again with ReadAt or ReadvAt.
	TryReadvAt(bufs [][]byte, off int64) bool
	// TryWritevAt is TryReadvAt for writes; a false one is written again.
	TryWritevAt(bufs [][]byte, off int64) bool
	// CanTry reports whether tries of writes (write true) or of reads can
	// succeed at all: false where the host refuses them outright (a
	// filesystem without RWF_NOWAIT for them), so that every try would
	// fail without telling whether the transfer would have waited.
	CanTry(write bool) bool
}

var (
	_ Vectored    = (*File)(nil)
	_ NonBlocking = (*File)(nil)
)

var errNegativeOffset = errors.New("negative offset")

// readBuffers fills bufs from the backend at off: in one call when there
// are several and the backend is Vectored, else one ReadAt each. A lone
// buffer goes to ReadAt, not through ReadvAt: with one frame more, a
// worker's new goroutine outgrew its first stack at the pread, and the
// runtime copied the stack for every request (a fifth of the CPU of
// 4 KiB writes).
func (d *Device) readBuffers(bufs [][]byte, off int64) error {
	if len(bufs) > 1 && d.vectored != nil {
		n, err := d.vectored.ReadvAt(bufs, off)
		return complete(n, total(bufs), err, io.ErrUnexpectedEOF)
	}
	for _, p := range bufs {
		n, err := d.backend.ReadAt(p, off)
		if err := complete(n, len(p), err, io.ErrUnexpectedEOF); err != nil {
			return err
		}
		off += int64(len(p))
	}
	return nil
}

// writeBuffers writes bufs to the backend at off, as readBuffers reads.
func (d *Device) writeBuffers(bufs [][]byte, off int64) error {
	if len(bufs) > 1 && d.vectored != nil {
		n, err := d.vectored.WritevAt(bufs, off)
		return complete(n, total(bufs), err, io.ErrShortWrite)
	}
	for _, p := range bufs {
		n, err := d.backend.WriteAt(p, off)
		if err := complete(n, len(p), err, io.ErrShortWrite); err != nil {
			return err
		}
		off += int64(len(p))
	}
	return nil
}

// complete judges a transfer by its count as well as its error, so a
// backend that reports a short transfer without an error still fails the
// request (the guest would otherwise get a partly filled buffer as OK),
// and a full one that ends with io.EOF, as ReaderAt allows, succeeds.
func complete(n, want int, err, short error) error {
	switch {
	case n == want && (err == nil || errors.Is(err, io.EOF)):
		return nil
	case err != nil:
		return err
	}
	return short
}

func total(bufs [][]byte) int {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	return n
}
