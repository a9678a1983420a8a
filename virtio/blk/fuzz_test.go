package blk_test

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"github.com/vmm-dev/vmm/virtio/blk"
)

// fuzzMaxBufs bounds the buffers on each side of a fuzzed chain; each is at
// most 64 KiB, so a chain fits the rig's guest memory.
const fuzzMaxBufs = 3

// fuzzChain decodes one input: le64 capacity, a byte with the readable
// (low nibble) and writable (high nibble) buffer counts, le16 lengths for
// each, then the readable bytes (zero-padded or cut to the lengths).
func fuzzChain(in []byte) (capacity uint64, readable [][]byte, writable []int, ok bool) {
	if len(in) < 9 {
		return 0, nil, nil, false
	}
	capacity = binary.LittleEndian.Uint64(in)
	nr, nw := int(in[8]&0xf)%(fuzzMaxBufs+1), int(in[8]>>4)%(fuzzMaxBufs+1)
	in = in[9:]
	if nr+nw == 0 || len(in) < 2*(nr+nw) {
		return 0, nil, nil, false
	}
	lens := make([]int, nr+nw)
	for i := range lens {
		lens[i] = int(binary.LittleEndian.Uint16(in[2*i:]))
	}
	data := in[2*(nr+nw):]
	for _, n := range lens[:nr] {
		b := make([]byte, n)
		data = data[copy(b, data):]
		readable = append(readable, b)
	}
	return capacity, readable, lens[nr:], true
}

// fuzzSeed encodes a chain for fuzzChain.
func fuzzSeed(capacity uint64, readable [][]byte, writable []int) []byte {
	b := binary.LittleEndian.AppendUint64(nil, capacity)
	b = append(b, byte(len(readable))|byte(len(writable))<<4)
	for _, r := range readable {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(r)))
	}
	for _, n := range writable {
		b = binary.LittleEndian.AppendUint16(b, uint16(n))
	}
	for _, r := range readable {
		b = append(b, r...)
	}
	return b
}

// parseErrors are the only errors ParseRequest may return.
var parseErrors = []error{
	blk.ErrShortHeader, blk.ErrNoStatus, blk.ErrDataDirection, blk.ErrDataLength,
	blk.ErrOutOfRange, blk.ErrIDTooSmall, blk.ErrUnsupported,
}

// FuzzParseRequest runs arbitrary request chains through ParseRequest and
// then through a Device over an in-memory disk of the fuzzed capacity,
// twice in one Notify so two workers run copies of it at once. Nothing
// may panic; ParseRequest returns one of its sentinels or a request
// inside the disk; Notify never fails on a valid chain, returns every
// chain, writes the status as the last writable byte and reports no more
// bytes than the chain can take.
func FuzzParseRequest(f *testing.F) {
	sector := make([]byte, blk.SectorSize)
	f.Add(fuzzSeed(8, [][]byte{header(blk.TypeIn, 1)}, []int{512, 1}))
	f.Add(fuzzSeed(8, [][]byte{header(blk.TypeOut, 7), sector}, []int{1}))
	f.Add(fuzzSeed(8, [][]byte{header(blk.TypeOut, 0)[:6], header(blk.TypeOut, 0)[6:], sector}, []int{1}))
	f.Add(fuzzSeed(8, [][]byte{header(blk.TypeFlush, 0)}, []int{1}))
	f.Add(fuzzSeed(8, [][]byte{header(blk.TypeGetID, 0)}, []int{20, 1}))
	f.Add(fuzzSeed(^uint64(0), [][]byte{header(blk.TypeIn, ^uint64(0)>>9)}, []int{512, 1}))
	f.Add(fuzzSeed(8, [][]byte{header(0x7fff, 0)}, []int{1}))
	f.Add(fuzzSeed(8, [][]byte{header(blk.TypeIn, 0)[:15]}, nil))
	f.Fuzz(func(t *testing.T, in []byte) {
		capacity, readable, writable, ok := fuzzChain(in)
		if !ok {
			return
		}
		c := popChain(t, readable, writable)
		req, err := blk.ParseRequest(c, capacity)
		checkParsed(t, req, err, capacity)

		disk := &memDisk{sectors: capacity}
		r := newRig(t, disk, blk.Options{}, blk.FeatureFlush)
		heads := []uint16{r.drv.AddChain(readable, writable), r.drv.AddChain(readable, writable)}
		r.notify()
		used := r.used(len(heads))
		for _, u := range used {
			if !slices.Contains(heads, uint16(u.ID)) || u.Len > c.WritableLen() {
				t.Fatalf("used %+v for heads %v, %d writable bytes", u, heads, c.WritableLen())
			}
		}
		if used[0].ID == used[1].ID {
			t.Fatalf("head %d returned twice", used[0].ID)
		}
		if c.WritableLen() == 0 {
			return
		}
		for _, head := range heads {
			if w := r.drv.Written(head); w[len(w)-1] != blk.Status(err) {
				t.Fatalf("head %d: status %d, want %d for %v", head, w[len(w)-1], blk.Status(err), err)
			}
		}
	})
}

func checkParsed(t *testing.T, req blk.Request, err error, capacity uint64) {
	t.Helper()
	if err != nil {
		n := 0
		for _, s := range parseErrors {
			if errors.Is(err, s) {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("ParseRequest error %v matches %d sentinels", err, n)
		}
		return
	}
	switch req.Type {
	case blk.TypeIn, blk.TypeOut:
		end := req.Sector + uint64(req.DataLen/blk.SectorSize)
		if req.DataLen%blk.SectorSize != 0 || end < req.Sector || end > capacity || req.Offset() < 0 {
			t.Fatalf("accepted %+v on a %d-sector disk", req, capacity)
		}
	case blk.TypeFlush:
		if req.DataLen != 0 {
			t.Fatalf("flush with data: %+v", req)
		}
	case blk.TypeGetID:
		if req.DataLen < blk.IDBytes {
			t.Fatalf("GET_ID into %d bytes", req.DataLen)
		}
	default:
		t.Fatalf("accepted type %d", req.Type)
	}
}
