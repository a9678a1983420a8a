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

// region is one validated buffer: [addr, addr+len) lies inside guest memory.
type region struct {
	addr guestmem.GuestAddr
	len  uint32
}

// Chain is a descriptor chain that passed validation. Its buffers were
// copied out of the descriptor table once, so the driver rewriting the
// table afterwards changes nothing here.
type Chain struct {
	mem      *guestmem.Memory
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

// Head is the index of the chain's first descriptor: what AddUsed takes.
func (c *Chain) Head() uint16 { return c.head }

// ReadableLen is the total length of the device-readable buffers.
func (c *Chain) ReadableLen() uint32 { return c.readLen }

// WritableLen is the total length of the device-writable buffers.
func (c *Chain) WritableLen() uint32 { return c.writeLen }

// Reader returns a reader over the device-readable buffers, from the first
// byte. Each call returns a new, independent reader.
func (c *Chain) Reader() *Reader {
	return &Reader{mem: c.mem, regions: c.readable, remaining: c.readLen}
}

// Writer returns a writer over the device-writable buffers, from the first
// byte. Each call returns a new, independent writer.
func (c *Chain) Writer() *Writer {
	return &Writer{mem: c.mem, regions: c.writable, remaining: c.writeLen}
}

// chainWalk is the state of one walk over a chain: which table it is in
// and how many descriptors it has visited there.
type chainWalk struct {
	table    guestmem.GuestAddr
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
func (q *Queue) readChain(mem *guestmem.Memory, head uint16) (*Chain, error) {
	c := &Chain{mem: mem, head: head}
	c.readable = c.inline[:0:2]
	c.writable = c.inline[2:2:4]
	w := chainWalk{table: q.cfg.DescTable, entries: uint32(q.cfg.Size)}
	// A plain function of its arguments, not a closure over w: that would
	// move w to the heap on every pop.
	fail := func(idx uint16, indirect bool, sentinel, cause error) error {
		return &ChainError{Head: head, Index: idx, Indirect: indirect, Err: sentinel, Cause: cause}
	}
	var readLen, writeLen uint64
	idx := head
	for {
		if uint32(idx) >= w.entries {
			return nil, fail(idx, w.indirect, w.outOfRange(), nil)
		}
		w.visited++
		if w.visited > w.entries {
			return nil, fail(idx, w.indirect, ErrChainLoop, nil)
		}
		d, err := readDescriptor(mem, w.table, idx)
		if err != nil { // unreachable: Enable and checkIndirect checked the table
			return nil, fail(idx, w.indirect, w.tableOutOfMemory(), err)
		}
		if d.Flags&DescFIndirect != 0 {
			if err := q.checkIndirect(&w, d); err != nil {
				return nil, fail(idx, w.indirect, err, nil)
			}
			if _, err := mem.Slice(d.Addr, uint64(d.Len)); err != nil {
				return nil, fail(idx, w.indirect, ErrIndirectTableOutOfMemory, err)
			}
			// The WRITE flag of the descriptor naming the table is
			// ignored (§2.7.5.3.2): the table's entries say.
			w = chainWalk{table: d.Addr, entries: d.Len / DescSize, indirect: true}
			idx = 0
			continue
		}
		if _, err := mem.Slice(d.Addr, uint64(d.Len)); err != nil {
			return nil, fail(idx, w.indirect, ErrBufferOutOfMemory, err)
		}
		r := region{addr: d.Addr, len: d.Len}
		if d.Flags&DescFWrite != 0 {
			writeLen += uint64(d.Len)
			c.writable = append(c.writable, r)
		} else {
			if len(c.writable) > 0 {
				return nil, fail(idx, w.indirect, ErrReadableAfterWritable, nil)
			}
			readLen += uint64(d.Len)
			c.readable = append(c.readable, r)
		}
		if readLen > math.MaxUint32 || writeLen > math.MaxUint32 {
			return nil, fail(idx, w.indirect, ErrLengthOverflow, nil)
		}
		if d.Flags&DescFNext == 0 {
			break
		}
		idx = d.Next
	}
	c.readLen, c.writeLen = uint32(readLen), uint32(writeLen)
	return c, nil
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

// tableOutOfMemory is the error for a descriptor table that cannot be read.
func (w *chainWalk) tableOutOfMemory() error {
	if w.indirect {
		return ErrIndirectTableOutOfMemory
	}
	return ErrRingOutOfMemory
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

// readDescriptor reads entry idx of the table at table.
func readDescriptor(mem *guestmem.Memory, table guestmem.GuestAddr, idx uint16) (Descriptor, error) {
	addr, ok := table.Add(uint64(idx) * DescSize)
	if !ok {
		return Descriptor{}, &guestmem.RangeError{Addr: table, Len: (uint64(idx) + 1) * DescSize}
	}
	var b [DescSize]byte
	if err := mem.ReadAt(b[:], addr); err != nil {
		return Descriptor{}, err
	}
	return decodeDescriptor(&b), nil
}
