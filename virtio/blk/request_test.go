package blk_test

import (
	"errors"
	"math"
	"testing"

	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/virtio"
	"github.com/vmm-dev/vmm/virtio/blk"
	"github.com/vmm-dev/vmm/virtio/virtiotest"
)

// popChain offers one chain with the given readable contents and writable
// lengths and returns it as the device sees it.
func popChain(t testing.TB, readable [][]byte, writable []int) *virtio.Chain {
	t.Helper()
	mem := guestmem.NewTest(1 << 20)
	drv := virtiotest.New(t, mem, testQueueSize)
	q, err := virtio.NewQueue(testQueueSize)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Enable(mem, drv.Config(0)); err != nil {
		t.Fatal(err)
	}
	drv.AddChain(readable, writable)
	c, err := q.Pop(mem)
	if err != nil || c == nil {
		t.Fatalf("Pop: %v, %v", c, err)
	}
	return c
}

func TestParseRequest(t *testing.T) {
	const capacity = 100
	hdr := header
	sectors := func(n int) []byte { return make([]byte, n*blk.SectorSize) }
	tests := []struct {
		name     string
		readable [][]byte
		writable []int
		want     blk.Request
		err      error
	}{
		{"read", [][]byte{hdr(blk.TypeIn, 3)}, []int{1024, 1},
			blk.Request{Type: blk.TypeIn, Sector: 3, DataLen: 1024}, nil},
		{"read split data", [][]byte{hdr(blk.TypeIn, 0)}, []int{100, 412, 512, 1},
			blk.Request{Type: blk.TypeIn, DataLen: 1024}, nil},
		{"read status shares a buffer", [][]byte{hdr(blk.TypeIn, 0)}, []int{513},
			blk.Request{Type: blk.TypeIn, DataLen: 512}, nil},
		{"read to the last sector", [][]byte{hdr(blk.TypeIn, capacity-2)}, []int{1024, 1},
			blk.Request{Type: blk.TypeIn, Sector: capacity - 2, DataLen: 1024}, nil},
		{"empty read at the end", [][]byte{hdr(blk.TypeIn, capacity)}, []int{1},
			blk.Request{Type: blk.TypeIn, Sector: capacity}, nil},
		{"write", [][]byte{hdr(blk.TypeOut, 7), sectors(2)}, []int{1},
			blk.Request{Type: blk.TypeOut, Sector: 7, DataLen: 1024}, nil},
		{"write with header and data in one buffer", [][]byte{append(hdr(blk.TypeOut, 7), sectors(1)...)}, []int{1},
			blk.Request{Type: blk.TypeOut, Sector: 7, DataLen: 512}, nil},
		{"header split", [][]byte{hdr(blk.TypeOut, 9)[:5], hdr(blk.TypeOut, 9)[5:], sectors(1)}, []int{1},
			blk.Request{Type: blk.TypeOut, Sector: 9, DataLen: 512}, nil},
		{"flush", [][]byte{hdr(blk.TypeFlush, 0)}, []int{1}, blk.Request{Type: blk.TypeFlush}, nil},
		{"get id", [][]byte{hdr(blk.TypeGetID, 0)}, []int{20, 1}, blk.Request{Type: blk.TypeGetID, DataLen: 20}, nil},
		{"get id, larger buffer", [][]byte{hdr(blk.TypeGetID, 0)}, []int{64}, blk.Request{Type: blk.TypeGetID, DataLen: 63}, nil},

		{"no readable bytes", nil, []int{1}, blk.Request{}, blk.ErrShortHeader},
		{"15-byte header", [][]byte{hdr(blk.TypeIn, 0)[:15]}, []int{1}, blk.Request{}, blk.ErrShortHeader},
		{"no status", [][]byte{hdr(blk.TypeFlush, 0)}, nil, blk.Request{}, blk.ErrNoStatus},
		{"write without status", [][]byte{hdr(blk.TypeOut, 0), sectors(1)}, nil, blk.Request{}, blk.ErrNoStatus},
		{"read with readable data", [][]byte{hdr(blk.TypeIn, 0), sectors(1)}, []int{1}, blk.Request{}, blk.ErrDataDirection},
		{"write with writable data", [][]byte{hdr(blk.TypeOut, 0)}, []int{512, 1}, blk.Request{}, blk.ErrDataDirection},
		{"flush with data", [][]byte{hdr(blk.TypeFlush, 0)}, []int{512, 1}, blk.Request{}, blk.ErrDataDirection},
		{"get id with readable data", [][]byte{hdr(blk.TypeGetID, 0), {1}}, []int{20, 1}, blk.Request{}, blk.ErrDataDirection},
		{"read of 511 bytes", [][]byte{hdr(blk.TypeIn, 0)}, []int{511, 1}, blk.Request{}, blk.ErrDataLength},
		{"write of 513 bytes", [][]byte{hdr(blk.TypeOut, 0), make([]byte, 513)}, []int{1}, blk.Request{}, blk.ErrDataLength},
		{"read past the end", [][]byte{hdr(blk.TypeIn, capacity-1)}, []int{1024, 1}, blk.Request{}, blk.ErrOutOfRange},
		{"write past the end", [][]byte{hdr(blk.TypeOut, capacity), sectors(1)}, []int{1}, blk.Request{}, blk.ErrOutOfRange},
		{"empty read past the end", [][]byte{hdr(blk.TypeIn, capacity+1)}, []int{1}, blk.Request{}, blk.ErrOutOfRange},
		{"sector wraps", [][]byte{hdr(blk.TypeIn, math.MaxUint64)}, []int{512, 1}, blk.Request{}, blk.ErrOutOfRange},
		{"get id of 19 bytes", [][]byte{hdr(blk.TypeGetID, 0)}, []int{19, 1}, blk.Request{}, blk.ErrIDTooSmall},
		{"discard", [][]byte{hdr(11, 0), make([]byte, 16)}, []int{1}, blk.Request{}, blk.ErrUnsupported},
		{"legacy scsi", [][]byte{hdr(2, 0)}, []int{1}, blk.Request{}, blk.ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := blk.ParseRequest(popChain(t, tt.readable, tt.writable), capacity)
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if got != tt.want {
				t.Errorf("request = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestParseRequest_HugeCapacity: a capacity no file can have still keeps
// the byte offset inside an int64.
func TestParseRequest_HugeCapacity(t *testing.T) {
	const last = math.MaxInt64 >> 9
	for _, tt := range []struct {
		sector uint64
		err    error
	}{
		{last - 1, nil},
		{last, blk.ErrOutOfRange},
		{math.MaxUint64 - 1, blk.ErrOutOfRange},
	} {
		c := popChain(t, [][]byte{header(blk.TypeIn, tt.sector)}, []int{512, 1})
		req, err := blk.ParseRequest(c, math.MaxUint64)
		if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
			t.Fatalf("sector %d: err = %v, want %v", tt.sector, err, tt.err)
		}
		if err == nil && req.Offset() < 0 {
			t.Errorf("sector %d: offset %d", tt.sector, req.Offset())
		}
	}
}

func TestStatus(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want byte
	}{
		{nil, blk.StatusOK},
		{blk.ErrUnsupported, blk.StatusUnsupp},
		{blk.ErrOutOfRange, blk.StatusIOErr},
		{errors.New("host"), blk.StatusIOErr},
	} {
		if got := blk.Status(tt.err); got != tt.want {
			t.Errorf("Status(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}
