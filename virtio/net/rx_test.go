package net_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/virtio"
	"github.com/vmm-dev/vmm/virtio/net"
)

func TestRX_OnePacket(t *testing.T) {
	r := newRig(t, 0)
	head := r.rx.AddChain(nil, []int{net.HeaderSize + 1514})
	pkt := packet(net.Header{NumBuffers: 7}, frame(1000, 5)) // num_buffers is the device's
	r.be.send(pkt)
	r.waitIdle()
	u := usedN(t, r.rx, 1)
	if u[0] != virtiotestUsed(head, uint32(len(pkt))) {
		t.Fatalf("used %+v", u)
	}
	if got := r.rx.Written(head)[:len(pkt)]; !bytes.Equal(got, withNumBuffers(pkt, 1)) {
		t.Errorf("delivered % x...", got[:16])
	}
	if n := r.irq.count(net.RXQueue); n != 1 {
		t.Errorf("%d interrupts, want 1", n)
	}
	if s := r.dev.Stats(); s.RXPackets != 1 || s.RXBytes != 1000 {
		t.Errorf("stats %+v", s)
	}
}

// TestRX_Merged: with MRG_RXBUF a 9000-byte frame spreads over 4 KiB
// buffers, all but the last full, and num_buffers counts them.
func TestRX_Merged(t *testing.T) {
	r := newRig(t, net.FeatureMrgRxbuf)
	var heads []uint16
	for range 4 {
		heads = append(heads, r.rx.AddChain(nil, []int{4096}))
	}
	pkt := packet(net.Header{}, frame(9000, 1))
	r.be.send(pkt)
	r.waitIdle()
	u := usedN(t, r.rx, 3)
	var got []byte
	for i, e := range u {
		want := []uint32{4096, 4096, uint32(len(pkt)) - 8192}[i]
		if e != virtiotestUsed(heads[i], want) {
			t.Errorf("used[%d] = %+v, want head %d, %d bytes", i, e, heads[i], want)
		}
		got = append(got, r.rx.Written(heads[i])[:e.Len]...)
	}
	if !bytes.Equal(got, withNumBuffers(pkt, 3)) {
		t.Error("delivered bytes differ from the packet with num_buffers 3")
	}
	// The fourth buffer is left for the next packet.
	small := packet(net.Header{}, frame(64, 2))
	r.be.send(small)
	r.waitIdle()
	if u := usedN(t, r.rx, 1); u[0] != virtiotestUsed(heads[3], uint32(len(small))) {
		t.Errorf("next packet used %+v", u)
	}
}

// TestRX_MergedOneBuffer: a packet that fits one mergeable buffer says
// num_buffers 1.
func TestRX_MergedOneBuffer(t *testing.T) {
	r := newRig(t, net.FeatureMrgRxbuf)
	head := r.rx.AddChain(nil, []int{1536})
	pkt := packet(net.Header{}, frame(1514, 1))
	r.be.send(pkt)
	r.waitIdle()
	usedN(t, r.rx, 1)
	if got := r.rx.Written(head)[:len(pkt)]; !bytes.Equal(got, withNumBuffers(pkt, 1)) {
		t.Error("delivered bytes differ")
	}
}

// TestRX_TooBigForBuffer: without MRG_RXBUF a packet larger than the
// chain is dropped, the chain comes back empty, and the next packet uses
// the next chain.
func TestRX_TooBigForBuffer(t *testing.T) {
	r := newRig(t, 0)
	h0 := r.rx.AddChain(nil, []int{net.HeaderSize + 1514})
	h1 := r.rx.AddChain(nil, []int{net.HeaderSize + 1514})
	small := packet(net.Header{}, frame(200, 4))
	r.be.send(packet(net.Header{}, frame(9000, 1)), small)
	r.waitIdle()
	u := usedN(t, r.rx, 2)
	if u[0] != virtiotestUsed(h0, 0) || u[1] != virtiotestUsed(h1, uint32(len(small))) {
		t.Errorf("used %+v", u)
	}
	if s := r.dev.Stats(); s.RXDropTooBig != 1 || s.RXPackets != 1 {
		t.Errorf("stats %+v", s)
	}
}

// TestRX_MergedRingTooSmall: when every buffer the ring can hold is too
// little for the packet, it is dropped rather than waited on forever.
func TestRX_MergedRingTooSmall(t *testing.T) {
	r := newRig(t, net.FeatureMrgRxbuf)
	for range testQueueSize {
		r.rx.AddChain(nil, []int{64})
	}
	r.be.send(packet(net.Header{}, frame(2000, 1)))
	r.waitIdle()
	for _, e := range usedN(t, r.rx, testQueueSize) {
		if e.Len != 0 {
			t.Fatalf("used %+v, want every buffer back empty", e)
		}
	}
	if s := r.dev.Stats(); s.RXDropTooBig != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestRX_DropsMalformed(t *testing.T) {
	tests := []struct {
		name     string
		features uint64
		pkt      []byte
		stat     func(net.Stats) uint64
	}{
		{"runt", 0, packet(net.Header{}, frame(14, 0))[:net.HeaderSize+13],
			func(s net.Stats) uint64 { return s.RXDropMalformed }},
		{"larger than the maximum", net.FeatureMrgRxbuf, packet(net.Header{}, frame(net.MaxFrameSize+1, 0)),
			func(s net.Stats) uint64 { return s.RXDropTooBig }},
		{"partial checksum without GUEST_CSUM", 0, packet(net.Header{Flags: net.HdrFNeedsCsum}, frame(60, 0)),
			func(s net.Stats) uint64 { return s.RXDropOffload }},
		{"TSO4 without GUEST_TSO4", net.FeatureGuestCsum, packet(net.Header{Flags: net.HdrFNeedsCsum, GSOType: net.GSOTCPv4}, frame(60, 0)),
			func(s net.Stats) uint64 { return s.RXDropOffload }},
		{"TSO6 without GUEST_TSO6", net.FeatureGuestCsum | net.FeatureGuestTSO4, packet(net.Header{GSOType: net.GSOTCPv6}, frame(60, 0)),
			func(s net.Stats) uint64 { return s.RXDropOffload }},
		{"ECN without GUEST_ECN", net.FeatureGuestCsum | net.FeatureGuestTSO4, packet(net.Header{GSOType: net.GSOTCPv4 | net.GSOECN}, frame(60, 0)),
			func(s net.Stats) uint64 { return s.RXDropOffload }},
		{"UFO", net.FeatureGuestCsum | net.FeatureGuestTSO4, packet(net.Header{GSOType: net.GSOUDP}, frame(60, 0)),
			func(s net.Stats) uint64 { return s.RXDropOffload }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, tt.features)
			head := r.rx.AddChain(nil, []int{80 << 10})
			good := packet(net.Header{}, frame(60, 3))
			r.be.send(tt.pkt, good)
			r.waitIdle()
			if u := usedN(t, r.rx, 1); u[0] != virtiotestUsed(head, uint32(len(good))) {
				t.Errorf("used %+v, want the good packet in the first buffer", u)
			}
			if n := tt.stat(r.dev.Stats()); n != 1 {
				t.Errorf("drop counter %d (stats %+v)", n, r.dev.Stats())
			}
		})
	}
}

// TestRX_Offloads: what the driver accepted is delivered with its header
// intact; without GUEST_CSUM, DATA_VALID is cleared (flags must be 0).
func TestRX_Offloads(t *testing.T) {
	tso := net.Header{Flags: net.HdrFNeedsCsum, GSOType: net.GSOTCPv6 | net.GSOECN, HdrLen: 74, GSOSize: 1428, CsumStart: 54, CsumOffset: 16}
	tests := []struct {
		name     string
		features uint64
		in, want net.Header
	}{
		{"TSO6 with ECN", net.FeatureGuestCsum | net.FeatureGuestTSO6 | net.FeatureGuestECN, tso, tso},
		{"data valid", net.FeatureGuestCsum, net.Header{Flags: net.HdrFDataValid}, net.Header{Flags: net.HdrFDataValid}},
		{"data valid without GUEST_CSUM", 0, net.Header{Flags: net.HdrFDataValid}, net.Header{}},
		{"unknown flag", net.FeatureGuestCsum, net.Header{Flags: 0x84}, net.Header{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, tt.features)
			head := r.rx.AddChain(nil, []int{80 << 10})
			f := frame(20000, 6)
			r.be.send(packet(tt.in, f))
			r.waitIdle()
			usedN(t, r.rx, 1)
			got := r.rx.Written(head)
			want := tt.want
			want.NumBuffers = 1
			if h, _ := net.ParseHeader(got); h != want {
				t.Errorf("header %+v, want %+v", h, want)
			}
			if !bytes.Equal(got[net.HeaderSize:net.HeaderSize+len(f)], f) {
				t.Error("frame differs")
			}
		})
	}
}

// TestRX_SkipsBadChains: a receive chain with a readable buffer, or too
// small for a header, comes back empty; the packet goes to the next.
func TestRX_SkipsBadChains(t *testing.T) {
	for _, mrg := range []uint64{0, net.FeatureMrgRxbuf} {
		r := newRig(t, mrg)
		bad1 := r.rx.AddChain([][]byte{{1, 2}}, []int{2048})
		bad2 := r.rx.AddChain(nil, []int{net.HeaderSize - 1})
		good := r.rx.AddChain(nil, []int{2048})
		pkt := packet(net.Header{}, frame(100, 0))
		r.be.send(pkt)
		r.waitIdle()
		u := usedN(t, r.rx, 3)
		if u[0] != virtiotestUsed(bad1, 0) || u[1] != virtiotestUsed(bad2, 0) || u[2] != virtiotestUsed(good, uint32(len(pkt))) {
			t.Errorf("mrg %#x: used %+v", mrg, u)
		}
		if s := r.dev.Stats(); s.RXBadChains != 2 || s.RXPackets != 1 {
			t.Errorf("mrg %#x: stats %+v", mrg, s)
		}
	}
}

// TestRX_WaitsForBuffers: a packet that finds no buffer is kept, not
// lost, and delivered once the driver posts buffers and notifies; packets
// behind it wait in the backend.
func TestRX_WaitsForBuffers(t *testing.T) {
	r := newRig(t, 0)
	p1, p2 := packet(net.Header{}, frame(100, 1)), packet(net.Header{}, frame(200, 2))
	r.be.send(p1, p2)
	r.waitParked(1)
	if u := r.rx.Used(); len(u) != 0 {
		t.Fatalf("used %+v with no buffers posted", u)
	}
	h1 := r.rx.AddChain(nil, []int{2048})
	r.notify(net.RXQueue)
	r.waitParked(2) // p2 finds none
	if u := usedN(t, r.rx, 1); u[0] != virtiotestUsed(h1, uint32(len(p1))) {
		t.Fatalf("used %+v", u)
	}
	if n := r.irq.count(net.RXQueue); n != 1 {
		t.Errorf("%d interrupts, want 1 before waiting again", n)
	}
	h2 := r.rx.AddChain(nil, []int{2048})
	r.notify(net.RXQueue)
	r.waitIdle()
	if u := usedN(t, r.rx, 1); u[0] != virtiotestUsed(h2, uint32(len(p2))) {
		t.Fatalf("used %+v", u)
	}
	if got := r.rx.Written(h2)[:len(p2)]; !bytes.Equal(got, withNumBuffers(p2, 1)) {
		t.Error("second packet differs")
	}
	if s := r.dev.Stats(); s.RXPackets != 2 || s.RXDropTooBig+s.RXDropMalformed+s.RXDropOffload != 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestRX_MergedWaitsMidPacket: with MRG_RXBUF the device holds the
// buffers it has and waits for the rest of what the packet needs.
func TestRX_MergedWaitsMidPacket(t *testing.T) {
	r := newRig(t, net.FeatureMrgRxbuf)
	h := []uint16{r.rx.AddChain(nil, []int{4096})}
	pkt := packet(net.Header{}, frame(9000, 1))
	r.be.send(pkt)
	r.waitParked(1)
	if u := r.rx.Used(); len(u) != 0 {
		t.Fatalf("used %+v before the packet fits", u)
	}
	h = append(h, r.rx.AddChain(nil, []int{4096}), r.rx.AddChain(nil, []int{4096}))
	r.notify(net.RXQueue)
	r.waitIdle()
	u := usedN(t, r.rx, 3)
	var got []byte
	for i, e := range u {
		if e.ID != uint32(h[i]) {
			t.Fatalf("used %+v, want heads %v in order", u, h)
		}
		got = append(got, r.rx.Written(h[i])[:e.Len]...)
	}
	if !bytes.Equal(got, withNumBuffers(pkt, 3)) {
		t.Error("delivered bytes differ")
	}
}

// TestRX_BatchedInterrupt: packets the backend has queued together are
// delivered with one interrupt.
func TestRX_BatchedInterrupt(t *testing.T) {
	r := newRig(t, 0)
	var pkts [][]byte
	for i := range 5 {
		r.rx.AddChain(nil, []int{2048})
		pkts = append(pkts, packet(net.Header{}, frame(60+i, byte(i))))
	}
	r.be.send(pkts...)
	r.waitIdle()
	usedN(t, r.rx, 5)
	if n := r.irq.count(net.RXQueue); n != 1 {
		t.Errorf("%d interrupts for one batch, want 1", n)
	}
}

// TestRX_EventIdx: with VIRTIO_F_EVENT_IDX the receiver interrupts only
// when used.idx passes used_event.
func TestRX_EventIdx(t *testing.T) {
	r := newRig(t, virtio.FeatureEventIdx)
	r.rx.SetUsedEvent(1) // interrupt once the second buffer is used
	for range 3 {
		r.rx.AddChain(nil, []int{2048})
	}
	r.be.send(packet(net.Header{}, frame(60, 0)))
	r.waitIdle()
	if n := r.irq.count(net.RXQueue); n != 0 {
		t.Fatalf("%d interrupts before used_event", n)
	}
	r.be.send(packet(net.Header{}, frame(60, 0)))
	r.waitIdle()
	if n := r.irq.count(net.RXQueue); n != 1 {
		t.Fatalf("%d interrupts, want 1", n)
	}
	r.be.send(packet(net.Header{}, frame(60, 0)))
	r.waitIdle()
	if n := r.irq.count(net.RXQueue); n != 1 {
		t.Errorf("%d interrupts, want still 1: used_event was not moved", n)
	}
	usedN(t, r.rx, 3)
}

// TestRX_NoInterruptFlag: VIRTQ_AVAIL_F_NO_INTERRUPT suppresses the
// interrupt without EVENT_IDX.
func TestRX_NoInterruptFlag(t *testing.T) {
	r := newRig(t, 0)
	r.rx.SetAvailFlags(virtio.AvailFNoInterrupt)
	r.rx.AddChain(nil, []int{2048})
	r.be.send(packet(net.Header{}, frame(60, 0)))
	r.waitIdle()
	usedN(t, r.rx, 1)
	if n := r.irq.count(net.RXQueue); n != 0 {
		t.Errorf("%d interrupts with NO_INTERRUPT set", n)
	}
}

// TestRX_BrokenQueue: a broken receive ring stops receive, is reported
// to OnError at once and returned from Notify(RXQueue); transmit goes on.
func TestRX_BrokenQueue(t *testing.T) {
	r := newRig(t, 0)
	r.rx.AddNextOutOfRange()
	r.be.send(packet(net.Header{}, frame(60, 0)))
	select {
	case err := <-r.errs:
		if !errors.Is(err, virtio.ErrNeedsReset) {
			t.Fatalf("OnError heard %v, want ErrNeedsReset", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("OnError not called")
	}
	if err := r.dev.Notify(net.RXQueue); !errors.Is(err, virtio.ErrNeedsReset) {
		t.Errorf("Notify(RXQueue) = %v, want ErrNeedsReset", err)
	}
	r.sendTX(packet(net.Header{}, frame(60, 0)))
	r.notify(net.TXQueue)
	if got := r.be.sent(); len(got) != 1 {
		t.Errorf("transmit sent %d packets", len(got))
	}
}

// TestReset_Prompt: Reset returns while the receiver waits in the
// backend, and while it holds a packet waiting for buffers.
func TestReset_Prompt(t *testing.T) {
	t.Run("waiting to read", func(t *testing.T) {
		r := newRig(t, 0)
		r.reset() // fails the test if it does not return
	})
	t.Run("waiting for buffers", func(t *testing.T) {
		r := newRig(t, net.FeatureMrgRxbuf)
		r.rx.AddChain(nil, []int{4096})
		r.be.send(packet(net.Header{}, frame(9000, 0)))
		r.waitParked(1)
		r.reset()
	})
	t.Run("notify racing reset", func(t *testing.T) {
		r := newRig(t, 0)
		r.be.send(packet(net.Header{}, frame(60, 0)))
		r.waitParked(1)
		r.notify(net.RXQueue)
		r.notify(net.RXQueue)
		r.reset()
	})
}
