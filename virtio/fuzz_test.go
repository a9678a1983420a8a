package virtio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/vmm-dev/vmm/guestmem"
)

// The fuzz target's guest memory: a 16 KiB region, inside a larger host
// buffer whose guard bytes on each side must survive every input.
const (
	fuzzMemSize   = 0x4000
	fuzzGuard     = 0x1000
	fuzzGuardByte = 0xa5
	fuzzDesc      = 0x000 // descriptor table (16 entries at most)
	fuzzAvail     = 0x200
	fuzzUsed      = 0x300
	fuzzData      = 0x400 // the rest of the input: buffers, indirect tables
	fuzzHdrLen    = 6
	fuzzReadCap   = 1 << 20 // bytes read from one chain
)

// fuzzInput lays out one FuzzQueue input: a header (queue size exponent,
// features, starting index, bytes to write per chain), then the descriptor
// table, the available ring and the data area as raw bytes.
func fuzzInput(sizeExp, features byte, start, writeCap uint16, descs []Descriptor, avail []uint16, data []byte) []byte {
	b := []byte{sizeExp, features}
	b = binary.LittleEndian.AppendUint16(b, start)
	b = binary.LittleEndian.AppendUint16(b, writeCap)
	size := 1 << (sizeExp % 5)
	table := make([]Descriptor, size)
	copy(table, descs)
	for _, d := range table {
		b, _ = binary.Append(b, binary.LittleEndian, d)
	}
	ring := make([]uint16, 3+size) // flags, idx, ring[size], used_event
	copy(ring, avail)
	for _, v := range ring {
		b = binary.LittleEndian.AppendUint16(b, v)
	}
	return append(b, data...)
}

// FuzzQueue lays arbitrary bytes out as a descriptor table, an available
// ring and buffers, then runs a device over it: Pop every chain, read all
// it may, write some (with Write and WriteByte), AddUsed,
// NeedsNotification. Nothing may panic, the work must be bounded, errors
// must be the NEEDS_RESET kind, and the only bytes that change are the
// used ring and writable buffers of popped chains; the guard bytes around
// guest memory never change. The committed corpus is in
// testdata/fuzz/FuzzQueue.
func FuzzQueue(f *testing.F) {
	const start = 65534 // indices about to wrap
	f.Add(fuzzInput(2, 3, start, 16, []Descriptor{
		{Addr: fuzzData, Len: 8, Flags: DescFNext, Next: 1},
		{Addr: fuzzData + 8, Len: 8, Flags: DescFWrite},
	}, []uint16{0, start + 1, 0, 0, 0, 0, start}, bytes.Repeat([]byte("x"), 16)))
	f.Add(fuzzInput(3, 2, 0, 32, []Descriptor{
		{Addr: fuzzData, Len: 3 * DescSize, Flags: DescFIndirect},
	}, []uint16{0, 1, 0}, fuzzTable([]Descriptor{
		{Addr: fuzzData + 0x100, Len: 4, Flags: DescFNext, Next: 1},
		{Addr: fuzzData + 0x104, Len: 4, Flags: DescFNext | DescFWrite, Next: 2},
		{Addr: fuzzData + 0x108, Len: 4, Flags: DescFWrite},
	})))
	f.Add(fuzzInput(1, 0, 0, 0, []Descriptor{
		{Addr: fuzzData, Len: 1, Flags: DescFNext, Next: 1},
		{Addr: fuzzData, Len: 1, Flags: DescFNext, Next: 0},
	}, []uint16{0, 1, 0}, nil))
	f.Add(fuzzInput(4, 1, 7, 4, []Descriptor{
		{Addr: fuzzData, Len: 4, Flags: DescFWrite | DescFNext, Next: 1},
		{Addr: fuzzData + 4, Len: 4},
	}, []uint16{1, 9, 0, 0}, nil))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < fuzzHdrLen {
			return
		}
		host := bytes.Repeat([]byte{fuzzGuardByte}, fuzzGuard+fuzzMemSize+fuzzGuard)
		ram := host[fuzzGuard : fuzzGuard+fuzzMemSize]
		clear(ram)
		mem, err := guestmem.NewFromBytes([]guestmem.RegionSpec{{Start: 0, Size: fuzzMemSize}}, [][]byte{ram})
		if err != nil {
			t.Fatal(err)
		}
		size := uint16(1) << (in[0] % 5)
		var features uint64
		if in[1]&1 != 0 {
			features |= FeatureEventIdx
		}
		if in[1]&2 != 0 {
			features |= FeatureIndirectDesc
		}
		startIdx := binary.LittleEndian.Uint16(in[2:])
		writeCap := int(binary.LittleEndian.Uint16(in[4:]))
		rest := in[fuzzHdrLen:]
		rest = rest[copy(ram[fuzzDesc:fuzzDesc+DescTableSize(size)], rest):]
		rest = rest[copy(ram[fuzzAvail:fuzzAvail+AvailRingSize(size)], rest):]
		copy(ram[fuzzData:], rest)

		q, _ := NewQueue(size)
		cfg := Config{Size: size, DescTable: fuzzDesc, AvailRing: fuzzAvail, UsedRing: fuzzUsed, Features: features}
		if err := q.Enable(mem, cfg); err != nil {
			t.Fatal(err)
		}
		q.nextAvail, q.nextUsed, q.signalled = startIdx, startIdx, startIdx
		before := bytes.Clone(ram)
		allowed := make([]int, fuzzMemSize+1) // +1 at a writable region's start, -1 past its end
		allow := func(a, n uint64) { allowed[a]++; allowed[a+n]-- }
		allow(fuzzUsed, UsedRingSize(size))

		pops := 0
		for {
			c, err := q.Pop(mem)
			if err != nil {
				if !errors.Is(err, ErrNeedsReset) {
					t.Fatalf("Pop error %v is not a NEEDS_RESET error", err)
				}
				break
			}
			if c == nil {
				break
			}
			if pops++; pops > int(size) {
				t.Fatalf("popped %d chains from a %d-entry queue", pops, size)
			}
			for _, r := range c.writable {
				if !mem.Contains(r.addr, uint64(r.len)) {
					t.Fatalf("writable region [%v, +%#x) outside memory", r.addr, r.len)
				}
				allow(uint64(r.addr), uint64(r.len))
			}
			fuzzUseChain(t, q, mem, c, writeCap)
		}
		if _, err := q.NeedsNotification(mem); err != nil && !errors.Is(err, ErrNeedsReset) {
			t.Fatalf("NeedsNotification: %v", err)
		}
		for i, b := range host {
			if (i < fuzzGuard || i >= fuzzGuard+fuzzMemSize) && b != fuzzGuardByte {
				t.Fatalf("host byte %d outside guest memory changed", i-fuzzGuard)
			}
		}
		depth := 0
		for i := range ram {
			depth += allowed[i]
			if depth == 0 && ram[i] != before[i] {
				t.Fatalf("guest byte %#x changed outside the used ring and writable buffers", i)
			}
		}
	})
}

// fuzzUseChain is what a device does with a chain: read it, write up to
// writeCap bytes, and return it.
func fuzzUseChain(t *testing.T, q *Queue, mem *guestmem.Memory, c *Chain, writeCap int) {
	var sum uint64
	for _, r := range c.readable {
		if !mem.Contains(r.addr, uint64(r.len)) {
			t.Fatalf("readable region [%v, +%#x) outside memory", r.addr, r.len)
		}
		sum += uint64(r.len)
	}
	if sum != uint64(c.ReadableLen()) {
		t.Fatalf("ReadableLen %d, regions add up to %d", c.ReadableLen(), sum)
	}
	want := min(int64(c.ReadableLen()), fuzzReadCap)
	if n, err := io.CopyN(io.Discard, c.Reader(), want); n != want || err != nil {
		t.Fatalf("read %d of %d readable bytes: %v", n, want, err)
	}
	// Half with Write, the rest a byte at a time, as a status is written.
	w := c.Writer()
	n, err := w.Write(bytes.Repeat([]byte{0xee}, writeCap/2))
	for err == nil && n < writeCap {
		if err = w.WriteByte(0xee); err == nil {
			n++
		}
	}
	if uint32(n) != min(uint32(writeCap), c.WritableLen()) || (err != nil) != (n < writeCap) || w.Written() != uint32(n) {
		t.Fatalf("wrote %d of %d into %d writable bytes (Written %d): %v", n, writeCap, c.WritableLen(), w.Written(), err)
	}
	if err := q.AddUsed(mem, c.Head(), w.Written()); err != nil {
		t.Fatalf("AddUsed: %v", err)
	}
}

// fuzzTable encodes descriptors as an indirect table.
func fuzzTable(descs []Descriptor) []byte {
	var b []byte
	for _, d := range descs {
		b, _ = binary.Append(b, binary.LittleEndian, d)
	}
	return b
}
