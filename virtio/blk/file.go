package blk

import (
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Backend is the storage behind a block device. ReadAt and WriteAt follow
// io.ReaderAt and io.WriterAt: a short transfer comes with an error.
type Backend interface {
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	// Flush makes every completed write durable (VIRTIO_BLK_T_FLUSH).
	Flush() error
	// Sectors is the capacity in 512-byte sectors.
	Sectors() uint64
	// ID is the device ID string GET_ID returns, NUL-padded.
	ID() [IDBytes]byte
	// ReadOnly reports whether writes are refused.
	ReadOnly() bool
}

// Disk image errors from NewFileBackend.
var (
	ErrNotRegular = errors.New("not a regular file")
	ErrEmptyDisk  = errors.New("smaller than one 512-byte sector")
)

// File is a Backend over a disk image file: pread and pwrite at the
// request's offset, fdatasync for FLUSH. Its transfers are system calls
// on the descriptor itself (fileio.go), not through os.File.
type File struct {
	f        *os.File
	fd       int // f's descriptor; valid while mu is held and closed is false
	readOnly bool
	sectors  uint64
	id       [IDBytes]byte
	sys      sysFunc // hostIO; tests put a fake here

	// mu is read-held across every system call on fd and write-held by
	// Close, so a call never reaches a descriptor Close released (and the
	// process may have reused for another file).
	mu     sync.RWMutex
	closed bool

	// Set when the filesystem refused RWF_NOWAIT (see try and CanTry).
	noTryRead, noTryWrite atomic.Bool

	// The file mapped for transfers of cached pages, and which pages are
	// (filemap.go); nil where it could not be mapped. Set by newFile,
	// cleared by Close with mu write-held.
	mapped   []byte
	resident *residentPages
	// Where the last read and the last write ended: a transfer from
	// there is sequential, and learns ahead (filemap.go).
	readEnd, writeEnd atomic.Int64
	// Bytes copied through the mapping since it was made, and how many
	// make remap replace it (filemap.go).
	copied     atomic.Int64
	remapAfter int64
}

// NewFileBackend opens the regular file at path as a disk. Its capacity is
// its size rounded down to whole sectors; a trailing partial sector is
// unreachable. Its ID is derived from the file's device and inode numbers,
// so it is stable across runs while the file is not replaced.
func NewFileBackend(path string, readOnly bool) (*File, error) {
	flag := os.O_RDWR
	if readOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, fmt.Errorf("open disk image: %w", err)
	}
	b, err := newFile(f, readOnly)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("disk image %s: %w", path, err)
	}
	return b, nil
}

func newFile(f *os.File, readOnly bool) (*File, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w (mode %v)", ErrNotRegular, fi.Mode())
	}
	if fi.Size() < SectorSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrEmptyDisk, fi.Size())
	}
	// Fd leaves a regular file's descriptor as it is: blocking, which is
	// what it already was (regular files are never in the poller).
	b := &File{f: f, fd: int(f.Fd()), sys: hostIO, readOnly: readOnly, sectors: uint64(fi.Size()) / SectorSize}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		b.id = fileID(uint64(st.Dev), st.Ino)
	}
	b.mapFile(int64(b.sectors) * SectorSize)
	return b, nil
}

// fileID is "dev:ino" in hex when it fits 20 bytes, else a hash of both,
// zero-padded: the NUL padding §5.2.6 asks of a shorter ID string.
func fileID(dev, ino uint64) [IDBytes]byte {
	var id [IDBytes]byte
	s := fmt.Sprintf("%x:%x", dev, ino)
	if len(s) > IDBytes {
		h := fnv.New64a()
		fmt.Fprintf(h, "%x:%x", dev, ino)
		s = fmt.Sprintf("vmm-%016x", h.Sum64())
	}
	copy(id[:], s)
	return id
}

// ReadAt reads with pread, as os.File's ReadAt does: until p is full, the
// file ends (io.EOF) or a call fails.
func (b *File) ReadAt(p []byte, off int64) (int, error) {
	return b.transfer(p, nil, off, false)
}

// WriteAt writes with pwrite; a read-only disk refuses with EROFS before
// any system call.
func (b *File) WriteAt(p []byte, off int64) (int, error) {
	if b.readOnly {
		return 0, &os.PathError{Op: "pwrite", Path: b.f.Name(), Err: syscall.EROFS}
	}
	return b.transfer(p, nil, off, true)
}

// Flush calls fdatasync: the data and the metadata needed to read it back
// reach stable storage.
func (b *File) Flush() error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	err := os.ErrClosed
	for !b.closed {
		if err = unix.Fdatasync(b.fd); err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return &os.PathError{Op: "fdatasync", Path: b.f.Name(), Err: err}
	}
	return nil
}

// Sectors is the capacity in 512-byte sectors, fixed when the file was
// opened.
func (b *File) Sectors() uint64 { return b.sectors }

// ID is the GET_ID string.
func (b *File) ID() [IDBytes]byte { return b.id }

// ReadOnly reports whether the file was opened read-only.
func (b *File) ReadOnly() bool { return b.readOnly }

// Close closes the file once no call is using its descriptor; calls after
// it fail with os.ErrClosed.
func (b *File) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return &os.PathError{Op: "close", Path: b.f.Name(), Err: os.ErrClosed}
	}
	b.closed = true
	b.unmap()
	return b.f.Close()
}
