package virtio

import "io"

// Reader reads a chain's device-readable buffers in order, as one stream.
// It reaches guest memory only through the slices guestmem's bounds-checked
// Slice returned when the chain was read.
type Reader struct {
	regions   []region
	off       uint32 // offset into regions[0]
	remaining uint32
}

// Read implements io.Reader. It returns io.EOF once every readable byte
// has been read.
func (r *Reader) Read(p []byte) (int, error) {
	// The usual read (a request's header) lies inside the current buffer.
	if len(r.regions) > 0 {
		if b := r.regions[0].host[r.off:]; len(p) <= len(b) {
			n := copy(p, b)
			r.off += uint32(n)
			r.remaining -= uint32(n)
			return n, nil
		}
	}
	if len(p) == 0 {
		return 0, nil
	}
	if r.remaining == 0 {
		return 0, io.EOF
	}
	n := copyRegions(&r.regions, &r.off, p, false)
	r.remaining -= uint32(n)
	return n, nil
}

// Skip moves past the next n readable bytes without copying them (a
// header already parsed) and returns how many it passed: fewer only when
// fewer remained.
func (r *Reader) Skip(n uint32) uint32 {
	n = min(n, r.remaining)
	r.remaining -= n
	for left := n; left > 0; {
		k := min(uint32(len(r.regions[0].host))-r.off, left)
		if k == 0 {
			r.regions, r.off = r.regions[1:], 0
			continue
		}
		r.off += k
		left -= k
	}
	return n
}

// Remaining is how many readable bytes have not been read yet.
func (r *Reader) Remaining() uint32 { return r.remaining }

// Buffers appends to dst the guest memory behind the next readable bytes,
// at most n bytes in at most maxBufs slices, and moves past them: a device
// can hand them to the host (pwritev) with no copy. It returns the number
// of bytes the slices cover, fewer than n only when the buffers or maxBufs
// ran out. Each slice came from guestmem's bounds-checked Slice and
// aliases guest memory, which the guest may change meanwhile. The error
// is always nil: the chain's buffers were checked when it was read.
func (r *Reader) Buffers(dst [][]byte, n uint32, maxBufs int) ([][]byte, uint32, error) {
	dst, k := sliceRegions(&r.regions, &r.off, dst, min(n, r.remaining), maxBufs)
	r.remaining -= k
	return dst, k, nil
}

// Writer writes a chain's device-writable buffers in order, as one stream,
// and counts what it wrote for Queue.AddUsed. It reaches guest memory only
// through the slices guestmem's bounds-checked Slice returned when the
// chain was read.
type Writer struct {
	regions   []region
	off       uint32 // offset into regions[0]
	remaining uint32
	written   uint32
}

// Write implements io.Writer. When p does not fit, it fills the buffers
// and returns io.ErrShortWrite.
func (w *Writer) Write(p []byte) (int, error) {
	n := copyRegions(&w.regions, &w.off, p, true)
	w.remaining -= uint32(n)
	w.written += uint32(n)
	if n < len(p) {
		return n, io.ErrShortWrite
	}
	return n, nil
}

// WriteByte implements io.ByteWriter: it writes b as the next writable
// byte (a status byte, say), or returns io.ErrShortWrite when none is left.
func (w *Writer) WriteByte(b byte) error {
	for len(w.regions) > 0 {
		if r := w.regions[0].host; int(w.off) < len(r) {
			r[w.off] = b
			w.off++
			w.remaining--
			w.written++
			return nil
		}
		w.regions, w.off = w.regions[1:], 0
	}
	return io.ErrShortWrite
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
// guestmem's bounds-checked Slice and aliases guest memory. The error is
// always nil, as Reader.Buffers's.
func (w *Writer) Buffers(dst [][]byte, n uint32, maxBufs int) ([][]byte, uint32, error) {
	dst, k := sliceRegions(&w.regions, &w.off, dst, min(n, w.remaining), maxBufs)
	w.remaining -= k
	w.written += k
	return dst, k, nil
}

// copyRegions copies between p and the regions, starting off bytes into
// the first, consuming regions as it goes. It stops when p or the regions
// run out, and returns how many bytes it copied.
func copyRegions(regions *[]region, off *uint32, p []byte, write bool) int {
	n := 0
	for n < len(p) && len(*regions) > 0 {
		r := (*regions)[0].host
		if int(*off) == len(r) {
			*regions, *off = (*regions)[1:], 0
			continue
		}
		var k int
		if write {
			k = copy(r[*off:], p[n:])
		} else {
			k = copy(p[n:], r[*off:])
		}
		n += k
		*off += uint32(k)
	}
	return n
}

// sliceRegions is copyRegions without the copy: it appends the slices
// behind the next n bytes of the regions to dst, at most maxBufs of them,
// each capped at its end, consuming regions as it goes, and returns how
// many bytes they cover.
func sliceRegions(regions *[]region, off *uint32, dst [][]byte, n uint32, maxBufs int) ([][]byte, uint32) {
	var done uint32
	for added := 0; done < n && added < maxBufs && len(*regions) > 0; {
		r := (*regions)[0].host
		if int(*off) == len(r) {
			*regions, *off = (*regions)[1:], 0
			continue
		}
		k := min(uint32(len(r))-*off, n-done)
		dst = append(dst, r[*off:*off+k:*off+k])
		added++
		done += k
		*off += k
	}
	return dst, done
}
