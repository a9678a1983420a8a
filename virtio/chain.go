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
	// inline holds the buffers of the usual chain (a blk request is a
	// header, data and a status byte; a frame one or two buffers), the
	// readable ones then the writable ones, so popping one allocates only
	// the Chain.
	inline [4]region
}

// reset makes c an empty chain at head, with no buffer of the chain it
// held before: both lists are empty and every length is zero. The regions
// left in inline are out of reach until readChain writes a new chain's
// over them. (Zeroing all of c, pointers and all, cost a tenth of a pop.)
func (c *Chain) reset(head uint16) {
	c.head = head
	c.readable, c.writable = nil, nil
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
// It fills c with the chain, all of it (a chain c held before leaves
// nothing behind); on an error c may hold parts of either chain, and the
// caller empties it.
func (q *Queue) readChain(mem *guestmem.Memory, head uint16, c *Chain) error {
	// The walk's state is plain locals, which the compiler can keep in
	// registers: the table it is in, how many descriptors that holds,
	// whether it is an indirect table, and how many it has visited there.
	table, entries, indirect, visited := q.desc, uint32(q.cfg.Size), false, uint32(0)
	// The regions are gathered in one local slice, in chain order (so the
	// readable ones first), and c's lists are cut from it at the end,
	// instead of two slice headers in c being updated per descriptor.
	regs := c.inline[:0]
	readable := 0 // how many of regs are readable
	var readLen, writeLen uint64
	idx := head
	for {
		if uint32(idx) >= entries {
			return chainError(head, idx, indirect, outOfRange(indirect, visited), nil)
		}
		visited++
		if visited > entries {
			return chainError(head, idx, indirect, ErrChainLoop, nil)
		}
		d := readDescriptor(table, idx)
		if d.Flags&DescFIndirect != 0 {
			if err := q.checkIndirect(indirect, d); err != nil {
				return chainError(head, idx, indirect, err, nil)
			}
			t, err := mem.Slice(d.Addr, uint64(d.Len))
			if err != nil {
				return chainError(head, idx, indirect, ErrIndirectTableOutOfMemory, err)
			}
			// The WRITE flag of the descriptor naming the table is
			// ignored (§2.7.5.3.2): the table's entries say.
			table, entries, indirect, visited = t, d.Len/DescSize, true, 0
			idx = 0
			continue
		}
		host, err := mem.Slice(d.Addr, uint64(d.Len))
		if err != nil {
			return chainError(head, idx, indirect, ErrBufferOutOfMemory, err)
		}
		if d.Flags&DescFWrite != 0 {
			writeLen += uint64(d.Len)
		} else {
			if len(regs) > readable {
				return chainError(head, idx, indirect, ErrReadableAfterWritable, nil)
			}
			readable++
			readLen += uint64(d.Len)
		}
		if readLen > math.MaxUint32 || writeLen > math.MaxUint32 {
			return chainError(head, idx, indirect, ErrLengthOverflow, nil)
		}
		// Grow regs by one and fill the new region field by field:
		// appending a region literal built it on the stack and copied it
		// in 16-byte loads, which stalled on the 8-byte stores that had
		// just built it (no store-to-load forwarding).
		if len(regs) == cap(regs) {
			regs = append(regs, region{})
		} else {
			regs = regs[:len(regs)+1]
		}
		r := &regs[len(regs)-1]
		r.addr, r.len, r.host = d.Addr, d.Len, host
		if d.Flags&DescFNext == 0 {
			break
		}
		idx = d.Next
	}
	c.head = head
	c.readable, c.writable = regs[:readable:readable], regs[readable:]
	c.readLen, c.writeLen = uint32(readLen), uint32(writeLen)
	return nil
}

// chainError is the error for the descriptor at idx of the chain at head.
func chainError(head, idx uint16, indirect bool, sentinel, cause error) error {
	return &ChainError{Head: head, Index: idx, Indirect: indirect, Err: sentinel, Cause: cause}
}

// outOfRange is the error for an index past the end of the table the
// walk is in, having visited that many descriptors there.
func outOfRange(indirect bool, visited uint32) error {
	switch {
	case indirect:
		return ErrIndirectNextOutOfRange
	case visited == 0:
		return ErrHeadOutOfRange
	default:
		return ErrNextOutOfRange
	}
}

// checkIndirect checks a descriptor that names an indirect table, all but
// where the table lies, and returns the rule it breaks.
func (q *Queue) checkIndirect(inIndirect bool, d Descriptor) error {
	switch {
	case inIndirect:
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
