package virtio

import (
	"math"

	"github.com/vmm-dev/vmm/guestmem"
)

// MaxIndirectDescs bounds an indirect table (§2.7.5.3). The spec leaves the
// limit to the device; a table may hold more entries than the queue (Linux
// sizes it by the request's segments), so it gets its own, the largest
// Queue Size, which keeps the work per chain bounded.
const MaxIndirectDescs = MaxQueueSize

// region is one validated buffer: [addr, addr+len) lies inside guest
// memory, and host is the bytes behind it, which guestmem's bounds-checked
// Slice returned when the chain was read, so using them needs no second
// lookup. host aliases guest memory, which outlives the chain's request.
type region struct {
	addr guestmem.GuestAddr
	len  uint32
	host []byte
}

// Chain is a descriptor chain that passed validation. Its buffers were
// copied out of the descriptor table once, so the driver rewriting the
// table afterwards changes nothing here.
type Chain struct {
	head     uint16
	readable []region // device-readable buffers, in chain order
	writable []region // device-writable buffers, in chain order
	readLen  uint32
	writeLen uint32
	// inline holds the buffer lists of the usual chain (a blk request is
	// a header, data and a status byte; a frame one or two buffers), so
	// popping one allocates only the Chain.
	inline [4]region
}

// reset makes c an empty chain at head, with no buffer of the chain it
// held before: every length is zero, and the inline regions left behind
// are past the lists' lengths, where only appends of the new chain's
// buffers reach them. (Zeroing all of c, pointers and all, cost a tenth
// of a pop.)
func (c *Chain) reset(head uint16) {
	c.head = head
	c.readable = c.inline[:0:2]
	c.writable = c.inline[2:2:4]
	c.readLen, c.writeLen = 0, 0
}

// Head is the index of the chain's first descriptor: what AddUsed takes.
func (c *Chain) Head() uint16 { return c.head }

// ReadableLen is the total length of the device-readable buffers.
func (c *Chain) ReadableLen() uint32 { return c.readLen }

// WritableLen is the total length of the device-writable buffers.
func (c *Chain) WritableLen() uint32 { return c.writeLen }

// Reader returns a reader over the device-readable buffers, from the first
// byte. Each call returns a new, independent reader.
func (c *Chain) Reader() *Reader {
	return &Reader{regions: c.readable, remaining: c.readLen}
}

// Writer returns a writer over the device-writable buffers, from the first
// byte. Each call returns a new, independent writer.
func (c *Chain) Writer() *Writer {
	return &Writer{regions: c.writable, remaining: c.writeLen}
}

// chainWalk is the state of one walk over a chain: which table it is in
// and how many descriptors it has visited there.
type chainWalk struct {
	table    []byte // the table's host bytes
	entries  uint32 // descriptors in table
	indirect bool   // table is an indirect table
	visited  uint32
}

// readChain walks the chain starting at head and validates all of it
// (§2.7.5) before returning it:
//   - every head and next index is inside its table;
//   - a walk visits at most as many descriptors as its table holds (Queue
//     Size, or an indirect table's length), so a loop is caught there;
//   - device-readable buffers all come before device-writable ones;
//   - every buffer lies inside guest memory;
//   - the readable and the writable totals each fit in 32 bits;
//   - indirect tables (§2.7.5.3) need VIRTIO_F_INDIRECT_DESC, come last
//     (no NEXT), are a non-empty multiple of 16 bytes inside guest memory,
//     and hold no further indirect descriptors.
//
// It empties c and fills it; on an error c holds part of the chain, and
// the caller empties it.
func (q *Queue) readChain(mem *guestmem.Memory, head uint16, c *Chain) error {
	c.reset(head)
	w := chainWalk{table: q.desc, entries: uint32(q.cfg.Size)}
	// A plain function of its arguments, not a closure over w: that would
	// move w to the heap on every pop.
	fail := func(idx uint16, indirect bool, sentinel, cause error) error {
		return &ChainError{Head: head, Index: idx, Indirect: indirect, Err: sentinel, Cause: cause}
	}
	var readLen, writeLen uint64
	idx := head
	for {
		if uint32(idx) >= w.entries {
			return fail(idx, w.indirect, w.outOfRange(), nil)
		}
		w.visited++
		if w.visited > w.entries {
			return fail(idx, w.indirect, ErrChainLoop, nil)
		}
		d := readDescriptor(w.table, idx)
		if d.Flags&DescFIndirect != 0 {
			if err := q.checkIndirect(&w, d); err != nil {
				return fail(idx, w.indirect, err, nil)
			}
			table, err := mem.Slice(d.Addr, uint64(d.Len))
			if err != nil {
				return fail(idx, w.indirect, ErrIndirectTableOutOfMemory, err)
			}
			// The WRITE flag of the descriptor naming the table is
			// ignored (§2.7.5.3.2): the table's entries say.
			w = chainWalk{table: table, entries: d.Len / DescSize, indirect: true}
			idx = 0
			continue
		}
		host, err := mem.Slice(d.Addr, uint64(d.Len))
		if err != nil {
			return fail(idx, w.indirect, ErrBufferOutOfMemory, err)
		}
		r := region{addr: d.Addr, len: d.Len, host: host}
		if d.Flags&DescFWrite != 0 {
			writeLen += uint64(d.Len)
			c.writable = append(c.writable, r)
		} else {
			if len(c.writable) > 0 {
				return fail(idx, w.indirect, ErrReadableAfterWritable, nil)
			}
			readLen += uint64(d.Len)
			c.readable = append(c.readable, r)
		}
		if readLen > math.MaxUint32 || writeLen > math.MaxUint32 {
			return fail(idx, w.indirect, ErrLengthOverflow, nil)
		}
		if d.Flags&DescFNext == 0 {
			break
		}
		idx = d.Next
	}
	c.readLen, c.writeLen = uint32(readLen), uint32(writeLen)
	return nil
}

// outOfRange is the error for an index past the end of the current table.
func (w *chainWalk) outOfRange() error {
	switch {
	case w.indirect:
		return ErrIndirectNextOutOfRange
	case w.visited == 0:
		return ErrHeadOutOfRange
	default:
		return ErrNextOutOfRange
	}
}

// checkIndirect checks a descriptor that names an indirect table, all but
// where the table lies, and returns the rule it breaks.
func (q *Queue) checkIndirect(w *chainWalk, d Descriptor) error {
	switch {
	case w.indirect:
		return ErrNestedIndirect
	case !q.indirect():
		return ErrIndirectNotNegotiated
	case d.Flags&DescFNext != 0:
		return ErrIndirectWithNext
	case d.Len == 0 || d.Len%DescSize != 0:
		return ErrIndirectTableLen
	case d.Len/DescSize > MaxIndirectDescs:
		return ErrIndirectTableTooLarge
	}
	return nil
}

// readDescriptor reads entry idx of a table's host bytes; the caller
// checked idx against the table's length.
func readDescriptor(table []byte, idx uint16) Descriptor {
	off := uint64(idx) * DescSize
	return decodeDescriptor((*[DescSize]byte)(table[off : off+DescSize]))
}
