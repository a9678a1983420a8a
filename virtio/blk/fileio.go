package blk

import (
	"io"
	"os"
	"slices"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// File's transfers are system calls on its descriptor, made here rather
// than through os.File, whose ReadAt (its descriptor lock and EINTR loop)
// cost 0.09 µs more than a bare pread of 4 KiB from the page cache
// (1.1 µs), and RawConn.Control with its closure and pool more again.
// mu keeps the descriptor open meanwhile instead (see File).

// sysFunc makes one transfer system call on fd at off: a read into p,
// or into bufs when bufs is not nil, or a write from them, with
// preadv2/pwritev2 flags. It returns what the call returned: a count,
// which may be short, or an errno. (One buffer comes alone, as p, so that
// a caller's slice of it need not be made on the heap for the call.)
type sysFunc func(fd int, p []byte, bufs [][]byte, off int64, write bool, flags int) (int, error)

// hostIO is the sysFunc of a real File. One buffer without flags takes
// pread or pwrite, cheaper than the vector calls (1.12 against 1.29 µs
// for 4 KiB from the page cache, measured here); flags (RWF_NOWAIT) need
// preadv2 or pwritev2.
func hostIO(fd int, p []byte, bufs [][]byte, off int64, write bool, flags int) (int, error) {
	switch {
	case bufs == nil && flags == 0 && write:
		return unix.Pwrite(fd, p, off)
	case bufs == nil && flags == 0:
		return unix.Pread(fd, p, off)
	case bufs == nil:
		bufs = [][]byte{p}
	}
	if write {
		return unix.Pwritev2(fd, bufs, off, flags)
	}
	return unix.Preadv2(fd, bufs, off, flags)
}

// ReadvAt reads with preadv, or with pread when there is one buffer. A
// read that ends early (the file shrank under the disk) returns io.EOF.
func (b *File) ReadvAt(bufs [][]byte, off int64) (int, error) {
	if len(bufs) == 1 {
		return b.transfer(bufs[0], nil, off, false)
	}
	return b.transfer(nil, bufs, off, false)
}

// WritevAt writes with pwritev, or with pwrite when there is one buffer; a
// read-only disk refuses with EROFS before any system call.
func (b *File) WritevAt(bufs [][]byte, off int64) (int, error) {
	if b.readOnly {
		return b.WriteAt(nil, off)
	}
	if len(bufs) == 1 {
		return b.transfer(bufs[0], nil, off, true)
	}
	return b.transfer(nil, bufs, off, true)
}

// TryReadvAt copies bufs from the mapping where every page is known to be
// cached (filemap.go), else reads with preadv2(RWF_NOWAIT): only what the
// page cache holds, in one call.
func (b *File) TryReadvAt(bufs [][]byte, off int64) bool {
	return b.try(bufs, off, false, &b.noTryRead)
}

// TryWritevAt writes with pwritev2(RWF_NOWAIT). Filesystems that cannot
// (ext4 refuses buffered RWF_NOWAIT writes with EOPNOTSUPP) are asked
// once; CanTry(true) then reports false, and the device decides how to
// make the write (see Device.runInline).
func (b *File) TryWritevAt(bufs [][]byte, off int64) bool {
	if b.readOnly {
		return false
	}
	return b.try(bufs, off, true, &b.noTryWrite)
}

// CanTry reports whether the host may still take tries of writes (write
// true) or reads: it stops once it refused RWF_NOWAIT for them (see try).
// A read-only file's writes are never tried.
func (b *File) CanTry(write bool) bool {
	if write {
		return !b.readOnly && !b.noTryWrite.Load()
	}
	return !b.noTryRead.Load()
}

// try copies bufs to or from the mapping where their pages are known
// cached (filemap.go), or else makes one RWF_NOWAIT call, and reports
// whether it moved all of bufs: EAGAIN (it would have waited), a short
// count, any error or a closed file report false. EOPNOTSUPP, ENOSYS or
// EPERM set unsupported, so later calls fail without a system call.
func (b *File) try(bufs [][]byte, off int64, write bool, unsupported *atomic.Bool) bool {
	if off < 0 { // preadv2 would take -1 as the file position
		return false
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return false
	}
	want := total(bufs)
	if b.copyCached(bufs, off, want, write) {
		return true
	}
	if unsupported.Load() {
		return false
	}
	n, err := b.sys(b.fd, nil, bufs, off, write, unix.RWF_NOWAIT)
	// Unsupported here: the filesystem (EOPNOTSUPP), the kernel (ENOSYS)
	// or a sandbox's seccomp filter (EPERM) refuses the call itself, and
	// will refuse every one after it.
	if err == unix.EOPNOTSUPP || err == unix.ENOSYS || err == unix.EPERM {
		unsupported.Store(true)
	}
	if err != nil || n != want {
		return false
	}
	b.learn(off, n)
	return true
}

// transfer copies p, or bufs when bufs is not nil, to or from the mapping
// where their pages are known cached (filemap.go); else it loops reads or
// writes of them until they are done, retrying EINTR and carrying on
// after a partial transfer, as os.File's ReadAt and WriteAt do for one
// buffer. A read that meets the end of the file returns io.EOF; a write
// that moves nothing returns io.ErrShortWrite.
func (b *File) transfer(p []byte, bufs [][]byte, off int64, write bool) (int, error) {
	if off < 0 { // preadv2 and pwritev2 would take -1 as the file position
		return 0, b.pathError(bufs, write, errNegativeOffset)
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return 0, b.pathError(bufs, write, os.ErrClosed)
	}
	want := len(p)
	if bufs != nil {
		want = total(bufs)
	}
	all, one := bufs, [1][]byte{p}
	if all == nil {
		all = one[:]
	}
	if b.copyCached(all, off, want, write) {
		return want, nil
	}
	start, done, owned := off, 0, false
	for done < want {
		n, err := b.sys(b.fd, p, bufs, off, write, 0)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return done, b.pathError(bufs, write, err)
		case n <= 0 && write:
			return done, b.pathError(bufs, write, io.ErrShortWrite)
		case n <= 0:
			return done, io.EOF // past the end of the file
		}
		done += n
		off += int64(n)
		switch {
		case done >= want:
		case bufs == nil:
			p = p[n:]
		case !owned: // leave the caller's slice as it was
			bufs, owned = advance(slices.Clone(bufs), n), true
		default:
			bufs = advance(bufs, n)
		}
	}
	b.learn(start, done)
	return done, nil
}

// pathError names the call that failed (bufs nil: one buffer) and the
// file.
func (b *File) pathError(bufs [][]byte, write bool, err error) error {
	op := "pread"
	switch {
	case bufs != nil && write:
		op = "pwritev"
	case bufs != nil:
		op = "preadv"
	case write:
		op = "pwrite"
	}
	return &os.PathError{Op: op, Path: b.f.Name(), Err: err}
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

// learn marks the pages wholly inside the n bytes at off as cached: a
// transfer of them just completed through the page cache. A page it
// covers only in part may reach past the end of the file (see
// learnAhead). The caller holds mu.
func (b *File) learn(off int64, n int) {
	first, end := (off+pageMask)&^pageMask, (off+int64(n))&^pageMask
	if b.resident != nil && end > first {
		b.resident.mark(first, end-first)
	}
}

// cached reports whether the n bytes at off lie in the mapping and every
// page of them is known to be cached. The caller holds mu, and has
// checked that b is mapped.
func (b *File) cached(off int64, n int) bool {
	return off <= int64(len(b.mapped))-int64(n) && b.resident.known(off, int64(n))
}
