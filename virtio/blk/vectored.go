package blk

import (
	"errors"
	"io"
	"os"
	"slices"
	"sync/atomic"

	"golang.org/x/sys/unix"
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

// NonBlocking is a Backend that can try a transfer without waiting: from
// and into the host's page cache, giving up at once where it would wait
// for the disk (RWF_NOWAIT). The device tries a lone request this way on
// the goroutine that called Notify, and hands it to a worker only when the
// try fails: one request at a time served from the cache is where the
// hand-off costs most.
type NonBlocking interface {
	// TryReadvAt reads all of bufs from off and reports true, or reports
	// false, having read none, some or all of them, when it would have
	// had to wait or failed for any reason: the device then reads them
	// again with ReadAt or ReadvAt.
	TryReadvAt(bufs [][]byte, off int64) bool
	// TryWritevAt is TryReadvAt for writes; a false one is written again.
	// (File's may wait where the filesystem cannot try: see there.)
	TryWritevAt(bufs [][]byte, off int64) bool
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

// ReadvAt reads with preadv, or with pread when there is one buffer. A
// read that ends early (the file shrank under the disk) returns io.EOF.
func (b *File) ReadvAt(bufs [][]byte, off int64) (int, error) {
	if len(bufs) == 1 {
		return b.ReadAt(bufs[0], off)
	}
	return b.vectorIO(bufs, off, false)
}

// WritevAt writes with pwritev, or with pwrite when there is one buffer; a
// read-only disk refuses with EROFS before any system call.
func (b *File) WritevAt(bufs [][]byte, off int64) (int, error) {
	if b.readOnly {
		return b.WriteAt(nil, off)
	}
	if len(bufs) == 1 {
		return b.WriteAt(bufs[0], off)
	}
	return b.vectorIO(bufs, off, true)
}

// TryReadvAt reads with preadv2(RWF_NOWAIT): only what the page cache
// holds, in one call.
func (b *File) TryReadvAt(bufs [][]byte, off int64) bool {
	return b.try(bufs, off, false, &b.noTryRead)
}

// TryWritevAt writes with pwritev2(RWF_NOWAIT). Filesystems that cannot
// (ext4 refuses buffered RWF_NOWAIT writes with EOPNOTSUPP) are asked
// once; after that a lone write is made at once with a plain pwritev. That
// can wait (dirty-page throttling, reading in a page a partial write
// touches, the journal), but only this queue waits, for a write a worker
// would be waiting on anyway, and the hand-off it saves is the whole gap
// between the device and the host's own pwrite at one request at a time
// (0.6 against 0.95 for 64 KiB writes). Firecracker's disk does all of its
// I/O this way.
func (b *File) TryWritevAt(bufs [][]byte, off int64) bool {
	if b.readOnly {
		return false
	}
	if b.try(bufs, off, true, &b.noTryWrite) {
		return true
	}
	if !b.noTryWrite.Load() {
		return false // RWF_NOWAIT is supported: this write would have waited
	}
	n, err := b.vectorIO(bufs, off, true)
	return err == nil && n == total(bufs)
}

// try makes one RWF_NOWAIT call and reports whether it moved all of bufs.
// EOPNOTSUPP sets unsupported, so later tries fail without a system call.
func (b *File) try(bufs [][]byte, off int64, write bool, unsupported *atomic.Bool) bool {
	if unsupported.Load() || off < 0 {
		return false
	}
	want := total(bufs)
	n, err := b.rawIO(bufs, off, write, unix.RWF_NOWAIT)
	if err == unix.EOPNOTSUPP {
		unsupported.Store(true)
	}
	return err == nil && n == want
}

// rawIO makes one preadv2 or pwritev2 on the file's descriptor, held
// open meanwhile (RawConn.Control): a Close racing with it waits, so the
// call never reaches a file the process opened later under the same
// number.
func (b *File) rawIO(bufs [][]byte, off int64, write bool, flags int) (int, error) {
	c, _ := b.calls.Get().(*vcall)
	if c == nil {
		c = &vcall{}
		c.run = c.do
	}
	c.bufs, c.off, c.write, c.flags = bufs, off, write, flags
	if err := b.rc.Control(c.run); err != nil {
		c.n, c.err = 0, os.ErrClosed // Control fails only on a closed file
	}
	n, err := c.n, c.err
	*c = vcall{run: c.run}
	b.calls.Put(c)
	return n, err
}

// vcall is one syscall's arguments and results. Its run, the method value
// Control takes, is made once per vcall and the vcalls are pooled, so a
// call allocates nothing.
type vcall struct {
	bufs  [][]byte
	off   int64
	write bool
	flags int
	n     int
	err   error
	run   func(fd uintptr)
}

func (c *vcall) do(fd uintptr) {
	if c.write {
		c.n, c.err = unix.Pwritev2(int(fd), c.bufs, c.off, c.flags)
	} else {
		c.n, c.err = unix.Preadv2(int(fd), c.bufs, c.off, c.flags)
	}
}

// vectorIO loops preadv or pwritev until bufs are done, retrying EINTR
// and carrying on after a partial transfer, as os.File's ReadAt and
// WriteAt do for one buffer.
func (b *File) vectorIO(bufs [][]byte, off int64, write bool) (int, error) {
	op := "preadv"
	if write {
		op = "pwritev"
	}
	if off < 0 { // preadv2 and pwritev2 would take -1 as the file position
		return 0, &os.PathError{Op: op, Path: b.f.Name(), Err: errNegativeOffset}
	}
	want := total(bufs)
	done, owned := 0, false
	for done < want {
		n, err := b.rawIO(bufs, off, write, 0)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return done, &os.PathError{Op: op, Path: b.f.Name(), Err: err}
		case n == 0 && write:
			return done, &os.PathError{Op: op, Path: b.f.Name(), Err: io.ErrShortWrite}
		case n == 0:
			return done, io.EOF // past the end of the file
		}
		done += n
		off += int64(n)
		if done < want {
			if !owned { // leave the caller's slice as it was
				bufs, owned = slices.Clone(bufs), true
			}
			bufs = advance(bufs, n)
		}
	}
	return done, nil
}

// advance drops the first n bytes from bufs, reslicing its elements, and
// any empty buffers after them.
func advance(bufs [][]byte, n int) [][]byte {
	for len(bufs) > 0 && n >= len(bufs[0]) {
		n -= len(bufs[0])
		bufs = bufs[1:]
	}
	if len(bufs) > 0 {
		bufs[0] = bufs[0][n:]
	}
	return bufs
}
