package virtio

import (
	"io"

	"github.com/vmm-dev/vmm/guestmem"
)

// Reader reads a chain's device-readable buffers in order, as one stream.
// It reaches guest memory only through guestmem's bounds-checked accessors.
type Reader struct {
	mem       *guestmem.Memory
	regions   []region
	off       uint32 // offset into regions[0]
	remaining uint32
}

// Read implements io.Reader. It returns io.EOF once every readable byte
// has been read.
func (r *Reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if r.remaining == 0 {
		return 0, io.EOF
	}
	n, err := copyRegions(r.mem, &r.regions, &r.off, p, false)
	r.remaining -= uint32(n)
	return n, err
}

// Remaining is how many readable bytes have not been read yet.
func (r *Reader) Remaining() uint32 { return r.remaining }

// Buffers appends to dst the guest memory behind the next readable bytes,
// at most n bytes in at most maxBufs slices, and moves past them: a device
// can hand them to the host (pwritev) with no copy. It returns the number
// of bytes the slices cover, fewer than n only when the buffers or maxBufs
// ran out. Each slice came from guestmem's bounds-checked Slice and
// aliases guest memory, which the guest may change meanwhile.
func (r *Reader) Buffers(dst [][]byte, n uint32, maxBufs int) ([][]byte, uint32, error) {
	dst, k, err := sliceRegions(r.mem, &r.regions, &r.off, dst, min(n, r.remaining), maxBufs)
	r.remaining -= k
	return dst, k, err
}

// Writer writes a chain's device-writable buffers in order, as one stream,
// and counts what it wrote for Queue.AddUsed. It reaches guest memory only
// through guestmem's bounds-checked accessors.
type Writer struct {
	mem       *guestmem.Memory
	regions   []region
	off       uint32 // offset into regions[0]
	remaining uint32
	written   uint32
}

// Write implements io.Writer. When p does not fit, it fills the buffers
// and returns io.ErrShortWrite.
func (w *Writer) Write(p []byte) (int, error) {
	n, err := copyRegions(w.mem, &w.regions, &w.off, p, true)
	w.remaining -= uint32(n)
	w.written += uint32(n)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	return n, err
}

// Remaining is how many writable bytes are left.
func (w *Writer) Remaining() uint32 { return w.remaining }

// Written is how many bytes have been written: the len for AddUsed.
func (w *Writer) Written() uint32 { return w.written }

// Buffers appends to dst the guest memory behind the next writable bytes,
// at most n bytes in at most maxBufs slices, and moves past them: a device
// can hand them to the host (preadv) with no copy. It returns the number
// of bytes the slices cover, fewer than n only when the buffers or maxBufs
// ran out. Those bytes count as written, so the caller must fill every
// one of them (with zeros, if its transfer fails). Each slice came from
// guestmem's bounds-checked Slice and aliases guest memory.
func (w *Writer) Buffers(dst [][]byte, n uint32, maxBufs int) ([][]byte, uint32, error) {
	dst, k, err := sliceRegions(w.mem, &w.regions, &w.off, dst, min(n, w.remaining), maxBufs)
	w.remaining -= k
	w.written += k
	return dst, k, err
}

// copyRegions copies between p and the regions, starting off bytes into
// the first, consuming regions as it goes. It stops when p or the regions
// run out.
func copyRegions(mem *guestmem.Memory, regions *[]region, off *uint32, p []byte, write bool) (int, error) {
	n := 0
	for n < len(p) && len(*regions) > 0 {
		r := (*regions)[0]
		if *off == r.len {
			*regions, *off = (*regions)[1:], 0
			continue
		}
		k := min(uint64(r.len-*off), uint64(len(p)-n))
		addr, ok := r.addr.Add(uint64(*off))
		if !ok { // unreachable: the chain's regions were validated
			return n, &guestmem.RangeError{Addr: r.addr, Len: uint64(r.len)}
		}
		var err error
		if write {
			err = mem.WriteAt(p[n:n+int(k)], addr)
		} else {
			err = mem.ReadAt(p[n:n+int(k)], addr)
		}
		if err != nil {
			return n, err
		}
		n += int(k)
		*off += uint32(k)
	}
	return n, nil
}

// sliceRegions is copyRegions without the copy: it appends the host
// slices behind the next n bytes of the regions to dst, at most maxBufs of
// them, consuming regions as it goes, and returns how many bytes they
// cover.
func sliceRegions(mem *guestmem.Memory, regions *[]region, off *uint32, dst [][]byte, n uint32, maxBufs int) ([][]byte, uint32, error) {
	var done uint32
	for added := 0; done < n && added < maxBufs && len(*regions) > 0; {
		r := (*regions)[0]
		if *off == r.len {
			*regions, *off = (*regions)[1:], 0
			continue
		}
		k := min(r.len-*off, n-done)
		addr, ok := r.addr.Add(uint64(*off))
		if !ok { // unreachable: the chain's regions were validated
			return dst, done, &guestmem.RangeError{Addr: r.addr, Len: uint64(r.len)}
		}
		b, err := mem.Slice(addr, uint64(k))
		if err != nil {
			return dst, done, err
		}
		dst = append(dst, b)
		added++
		done += k
		*off += k
	}
	return dst, done, nil
}
