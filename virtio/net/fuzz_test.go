package net_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/virtio"
	"github.com/vmm-dev/vmm/virtio/net"
	"github.com/vmm-dev/vmm/virtio/virtiotest"
)

// FuzzNetQueues' guest memory: both queues' rings at fixed places, then a
// data area the input fills, inside guard bytes that must survive.
const (
	fzMemSize  = 0x8000
	fzGuard    = 0x1000
	fzGuardB   = 0xa5
	fzRXDesc   = 0x000 // 16 descriptors at most
	fzRXAvail  = 0x100
	fzRXUsed   = 0x200
	fzTXDesc   = 0x400
	fzTXAvail  = 0x500
	fzTXUsed   = 0x600
	fzData     = 0x800
	fzHdrLen   = 4
	fzPktLen   = 2 + net.HeaderSize // le16 frame length, then the header the backend hands over
	fzMaxPkts  = 3
	fzWaitStep = 20 * time.Microsecond
)

// Feature bits of an input's third byte.
var fzFeatures = []uint64{
	virtio.FeatureEventIdx, virtio.FeatureIndirectDesc, net.FeatureMrgRxbuf,
	net.FeatureGuestCsum, net.FeatureGuestTSO4, net.FeatureGuestTSO6, net.FeatureGuestECN,
}

// fzPacket is one packet the fake backend hands the device.
type fzPacket struct {
	hdr      net.Header
	frameLen uint16
}

// fzRing is one queue's descriptor table and available ring (flags, idx,
// ring entries, used_event).
type fzRing struct {
	descs []virtio.Descriptor
	avail []uint16
}

// fuzzInput encodes an input: log2 of each queue size, feature bits, the
// packet count, the packets, then each queue's table and available ring
// (padded to the queue size) and the data area.
func fuzzInput(rxExp, txExp, features byte, pkts []fzPacket, rx, tx fzRing, data []byte) []byte {
	b := []byte{rxExp, txExp, features, byte(len(pkts))}
	for _, p := range pkts {
		b = binary.LittleEndian.AppendUint16(b, p.frameLen)
		b = p.hdr.Append(b)
	}
	for _, q := range []struct {
		exp byte
		r   fzRing
	}{{rxExp, rx}, {txExp, tx}} {
		size := 1 << (q.exp % 5)
		table := make([]virtio.Descriptor, size)
		copy(table, q.r.descs)
		for _, d := range table {
			b, _ = binary.Append(b, binary.LittleEndian, d)
		}
		ring := make([]uint16, 3+size)
		copy(ring, q.r.avail)
		for _, v := range ring {
			b = binary.LittleEndian.AppendUint16(b, v)
		}
	}
	return append(b, data...)
}

// FuzzNetQueues lays arbitrary bytes out as both queues' descriptor tables,
// available rings and buffers, and packets for the backend, then drives
// the device: transmit everything, receive the packets, notify receive,
// reset. Nothing may panic or hang; Notify fails only with NEEDS_RESET
// errors; the backend gets only packets within bounds; every packet is
// delivered, dropped or still pending; the host bytes around guest memory
// never change. The committed corpus is in testdata/fuzz/FuzzNetQueues.
func FuzzNetQueues(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		f.Add(seed)
	}
	f.Fuzz(fuzzNetQueues)
}

// fuzzNetQueues is FuzzNetQueues' body.
func fuzzNetQueues(t *testing.T, in []byte) {
	if len(in) < fzHdrLen {
		return
	}
	rxSize, txSize := uint16(1)<<(in[0]%5), uint16(1)<<(in[1]%5)
	var features uint64
	for i, bit := range fzFeatures {
		if in[2]&(1<<i) != 0 {
			features |= bit
		}
	}
	npkts := int(in[3]) % (fzMaxPkts + 1)
	in = in[fzHdrLen:]
	var pkts [][]byte
	for range npkts {
		if len(in) < fzPktLen {
			return
		}
		n := int(binary.LittleEndian.Uint16(in))
		pkts = append(pkts, append(bytes.Clone(in[2:fzPktLen]), frame(max(n, 14), byte(n))[:n]...))
		in = in[fzPktLen:]
	}

	host := bytes.Repeat([]byte{fzGuardB}, fzGuard+fzMemSize+fzGuard)
	ram := host[fzGuard : fzGuard+fzMemSize]
	clear(ram)
	in = in[copy(ram[fzRXDesc:fzRXDesc+virtio.DescTableSize(rxSize)], in):]
	in = in[copy(ram[fzRXAvail:fzRXAvail+virtio.AvailRingSize(rxSize)], in):]
	in = in[copy(ram[fzTXDesc:fzTXDesc+virtio.DescTableSize(txSize)], in):]
	in = in[copy(ram[fzTXAvail:fzTXAvail+virtio.AvailRingSize(txSize)], in):]
	copy(ram[fzData:], in)
	mem, err := guestmem.NewFromBytes([]guestmem.RegionSpec{{Start: 0, Size: fzMemSize}}, [][]byte{ram})
	if err != nil {
		t.Fatal(err)
	}

	fz := newFuzzRig(t, mem, features, rxSize, txSize)
	fz.checkNotify(net.TXQueue)
	fz.be.send(pkts...)
	fz.settle(0)
	waits := fz.dev.Stats().RXBufferWaits
	fz.checkNotify(net.RXQueue)
	fz.settle(waits)
	fz.reset()

	for i, b := range host {
		if (i < fzGuard || i >= fzGuard+fzMemSize) && b != fzGuardB {
			t.Fatalf("host byte %d outside guest memory changed", i-fzGuard)
		}
	}
	fz.checkCounts(len(pkts))
}

// fuzzRig is a device activated on rings laid out by a fuzz input.
type fuzzRig struct {
	t       *testing.T
	dev     *net.Device
	be      *fakeBackend
	stopped atomic.Bool // the receiver gave up: OnError heard why
}

func newFuzzRig(t *testing.T, mem *guestmem.Memory, features uint64, rxSize, txSize uint16) *fuzzRig {
	fz := &fuzzRig{t: t, be: newFakeBackend()}
	dev, err := net.New(fz.be, net.Options{MAC: testMAC, OnError: func(err error) {
		if !errors.Is(err, virtio.ErrNeedsReset) {
			t.Errorf("receiver stopped on %v, not a NEEDS_RESET error", err)
		}
		fz.stopped.Store(true)
	}})
	if err != nil {
		t.Fatal(err)
	}
	fz.dev = dev
	var qs []*virtio.Queue
	for _, c := range []virtio.Config{
		{Size: rxSize, DescTable: fzRXDesc, AvailRing: fzRXAvail, UsedRing: fzRXUsed, Features: features},
		{Size: txSize, DescTable: fzTXDesc, AvailRing: fzTXAvail, UsedRing: fzTXUsed, Features: features},
	} {
		q, _ := virtio.NewQueue(net.DefaultQueueSize)
		if err := q.Enable(mem, c); err != nil {
			t.Fatal(err)
		}
		qs = append(qs, q)
	}
	if err := dev.Activate(mem, features, qs, &irqRecorder{}); err != nil {
		t.Fatal(err)
	}
	fz.settle(0)
	return fz
}

// settle waits until the receiver touches guest memory no more: it waits
// in the backend with nothing queued, has waited for buffers more than
// waits times, or has stopped.
func (fz *fuzzRig) settle(waits uint64) {
	deadline := time.Now().Add(testTimeout)
	for !fz.be.idle() && fz.dev.Stats().RXBufferWaits <= waits && !fz.stopped.Load() {
		if time.Now().After(deadline) {
			fz.t.Fatal("receiver did not settle")
		}
		time.Sleep(fzWaitStep)
	}
}

func (fz *fuzzRig) checkNotify(q int) {
	if err := fz.dev.Notify(q); err != nil && !errors.Is(err, virtio.ErrNeedsReset) {
		fz.t.Fatalf("Notify(%d) = %v, not a NEEDS_RESET error", q, err)
	}
}

func (fz *fuzzRig) reset() { virtiotest.MustReturn(fz.t, "Reset", fz.dev.Reset) }

// checkCounts checks what the backend got and that no received packet is
// unaccounted for.
func (fz *fuzzRig) checkCounts(sent int) {
	s := fz.dev.Stats()
	got := fz.be.sent()
	if uint64(len(got)) != s.TXPackets {
		fz.t.Fatalf("backend got %d packets, stats say %d", len(got), s.TXPackets)
	}
	for _, p := range got {
		if len(p) < net.HeaderSize+14 || len(p) > net.MaxPacketSize {
			fz.t.Fatalf("backend got a %d-byte packet", len(p))
		}
	}
	fz.be.mu.Lock()
	left := len(fz.be.queue)
	fz.be.mu.Unlock()
	handled := s.RXPackets + s.RXDropTooBig + s.RXDropMalformed + s.RXDropOffload
	if handled+uint64(left) > uint64(sent) || handled+uint64(left)+1 < uint64(sent) {
		// At most one packet is lost: the one held when Reset came.
		fz.t.Fatalf("%d packets sent, %d handled, %d left in the backend", sent, handled, left)
	}
}

// fuzzSeeds are the inputs f.Add starts from; the same are committed
// under testdata/fuzz/FuzzNetQueues.
func fuzzSeeds() [][]byte {
	const (
		eventIdx = 1 << 0
		indirect = 1 << 1
		mrg      = 1 << 2
		csum     = 1 << 3
		tso4     = 1 << 4
	)
	txPkt := packet(net.Header{}, frame(60, 1))
	return [][]byte{
		// One transmit chain, header apart; one receive buffer, one packet.
		fuzzInput(2, 2, 0, []fzPacket{{frameLen: 100}},
			fzRing{descs: []virtio.Descriptor{{Addr: fzData, Len: 2048, Flags: virtio.DescFWrite}}, avail: []uint16{0, 1, 0}},
			fzRing{descs: []virtio.Descriptor{
				{Addr: fzData + 0x1000, Len: net.HeaderSize, Flags: virtio.DescFNext, Next: 1},
				{Addr: fzData + 0x1000 + net.HeaderSize, Len: uint32(len(txPkt) - net.HeaderSize)},
			}, avail: []uint16{0, 1, 0}},
			append(make([]byte, 0x1000), txPkt...)),
		// Mergeable buffers: a 9000-byte frame over three 4 KiB buffers,
		// with EVENT_IDX.
		fuzzInput(2, 0, mrg|eventIdx, []fzPacket{{frameLen: 9000}},
			fzRing{descs: []virtio.Descriptor{
				{Addr: fzData, Len: 4096, Flags: virtio.DescFWrite},
				{Addr: fzData + 4096, Len: 4096, Flags: virtio.DescFWrite},
				{Addr: fzData + 8192, Len: 4096, Flags: virtio.DescFWrite},
			}, avail: []uint16{0, 3, 0, 1, 2, 0, 0, 0, 1}},
			fzRing{}, nil),
		// Mergeable buffers that run out mid-packet.
		fuzzInput(1, 0, mrg, []fzPacket{{frameLen: 9000}, {frameLen: 60}},
			fzRing{descs: []virtio.Descriptor{{Addr: fzData, Len: 4096, Flags: virtio.DescFWrite}}, avail: []uint16{0, 1, 0}},
			fzRing{}, nil),
		// Indirect receive chain, TSO header with offloads accepted.
		fuzzInput(0, 0, indirect|csum|tso4, []fzPacket{{frameLen: 3000, hdr: net.Header{Flags: net.HdrFNeedsCsum, GSOType: net.GSOTCPv4, GSOSize: 1448, HdrLen: 54, CsumStart: 34, CsumOffset: 16}}},
			fzRing{descs: []virtio.Descriptor{{Addr: fzData, Len: 2 * virtio.DescSize, Flags: virtio.DescFIndirect}}, avail: []uint16{0, 1, 0}},
			fzRing{}, fuzzTable([]virtio.Descriptor{
				{Addr: fzData + 0x100, Len: net.HeaderSize, Flags: virtio.DescFWrite | virtio.DescFNext, Next: 1},
				{Addr: fzData + 0x200, Len: 4000, Flags: virtio.DescFWrite},
			})),
		// A looping transmit chain and a receive chain with a readable
		// buffer.
		fuzzInput(1, 1, 0, []fzPacket{{frameLen: 60}},
			fzRing{descs: []virtio.Descriptor{
				{Addr: fzData, Len: 16},
				{Addr: fzData, Len: 2048, Flags: virtio.DescFWrite},
			}, avail: []uint16{0, 2, 0, 1}},
			fzRing{descs: []virtio.Descriptor{
				{Addr: fzData, Len: 64, Flags: virtio.DescFNext, Next: 1},
				{Addr: fzData, Len: 64, Flags: virtio.DescFNext, Next: 0},
			}, avail: []uint16{0, 1, 0}},
			nil),
		// avail.idx far ahead on both queues.
		fuzzInput(3, 3, eventIdx, []fzPacket{{frameLen: 14}},
			fzRing{avail: []uint16{0, 100}}, fzRing{avail: []uint16{0, 9}}, nil),
	}
}

// fuzzTable encodes descriptors as an indirect table.
func fuzzTable(descs []virtio.Descriptor) []byte {
	var b []byte
	for _, d := range descs {
		b, _ = binary.Append(b, binary.LittleEndian, d)
	}
	return b
}
