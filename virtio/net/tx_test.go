package net_test

import (
	"bytes"
	"errors"
	"syscall"
	"testing"

	"github.com/vmm-dev/vmm/virtio"
	"github.com/vmm-dev/vmm/virtio/net"
)

// sendTX offers pkt as a transmit chain split into readable buffers at
// the given cut points.
func (r *rig) sendTX(pkt []byte, cuts ...int) uint16 {
	r.t.Helper()
	var bufs [][]byte
	prev := 0
	for _, c := range append(cuts, len(pkt)) {
		bufs = append(bufs, pkt[prev:c])
		prev = c
	}
	return r.tx.AddChain(bufs, nil)
}

func TestTX_OneFrame(t *testing.T) {
	r := newRig(t, 0)
	pkt := packet(net.Header{}, frame(1514, 7))
	head := r.sendTX(pkt, net.HeaderSize, 600) // header apart, frame in two
	r.notify(net.TXQueue)
	if u := usedN(t, r.tx, 1); u[0] != (virtiotestUsed(head, 0)) {
		t.Errorf("used %+v, want head %d with 0 bytes", u, head)
	}
	got := r.be.sent()
	if len(got) != 1 || !bytes.Equal(got[0], pkt) {
		t.Fatalf("backend got %d packets, want the one sent byte for byte", len(got))
	}
	if n := r.irq.count(net.TXQueue); n != 1 {
		t.Errorf("%d interrupts, want 1", n)
	}
	if s := r.dev.Stats(); s.TXPackets != 1 || s.TXBytes != 1514 {
		t.Errorf("stats %+v", s)
	}
}

func TestTX_SeveralFrames_OneInterrupt(t *testing.T) {
	r := newRig(t, 0)
	var want [][]byte
	for i := range 3 {
		pkt := packet(net.Header{}, frame(60+i*500, byte(i)))
		want = append(want, pkt)
		r.sendTX(pkt)
	}
	r.notify(net.TXQueue)
	usedN(t, r.tx, 3)
	got := r.be.sent()
	if len(got) != 3 {
		t.Fatalf("backend got %d packets, want 3", len(got))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("packet %d differs", i)
		}
	}
	if n := r.irq.count(net.TXQueue); n != 1 {
		t.Errorf("%d interrupts for one batch, want 1", n)
	}
}

// TestTX_HeaderPassedThrough: checksum and GSO requests reach the
// backend as the driver wrote them.
func TestTX_HeaderPassedThrough(t *testing.T) {
	r := newRig(t, net.FeatureCsum|net.FeatureHostTSO4|net.FeatureHostECN)
	h := net.Header{
		Flags: net.HdrFNeedsCsum, GSOType: net.GSOTCPv4 | net.GSOECN,
		HdrLen: 54, GSOSize: 1448, CsumStart: 34, CsumOffset: 16,
	}
	pkt := packet(h, frame(9000, 3))
	r.sendTX(pkt)
	r.notify(net.TXQueue)
	got := r.be.sent()
	if len(got) != 1 {
		t.Fatalf("backend got %d packets", len(got))
	}
	if gh, _ := net.ParseHeader(got[0]); gh != h {
		t.Errorf("header %+v, want %+v", gh, h)
	}
	if !bytes.Equal(got[0], pkt) {
		t.Error("packet changed on the way")
	}
}

// TestTX_BadChains: each malformed chain comes back with nothing written
// and is counted; the queue goes on to the good packet behind it.
func TestTX_BadChains(t *testing.T) {
	tests := []struct {
		name     string
		readable [][]byte
		writable []int
		stat     func(net.Stats) uint64
	}{
		{"writable buffer", [][]byte{packet(net.Header{}, frame(60, 0))}, []int{16},
			func(s net.Stats) uint64 { return s.TXDropBadChain }},
		{"only writable", nil, []int{100},
			func(s net.Stats) uint64 { return s.TXDropBadChain }},
		{"shorter than the header", [][]byte{make([]byte, net.HeaderSize-1)}, nil,
			func(s net.Stats) uint64 { return s.TXDropBadChain }},
		{"header without a frame", [][]byte{make([]byte, net.HeaderSize+13)}, nil,
			func(s net.Stats) uint64 { return s.TXDropBadChain }},
		{"too big", [][]byte{make([]byte, net.HeaderSize), frame(net.MaxFrameSize+1, 0)}, nil,
			func(s net.Stats) uint64 { return s.TXDropTooBig }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, 0)
			bad := r.tx.AddChain(tt.readable, tt.writable)
			good := packet(net.Header{}, frame(100, 9))
			r.sendTX(good)
			r.notify(net.TXQueue)
			u := usedN(t, r.tx, 2)
			if u[0] != virtiotestUsed(bad, 0) || u[1].Len != 0 {
				t.Errorf("used %+v", u)
			}
			if got := r.be.sent(); len(got) != 1 || !bytes.Equal(got[0], good) {
				t.Errorf("backend got %d packets, want only the good one", len(got))
			}
			if n := tt.stat(r.dev.Stats()); n != 1 {
				t.Errorf("drop counter %d, want 1 (stats %+v)", n, r.dev.Stats())
			}
		})
	}
}

// TestTX_MaxPacket: the largest packet allowed goes through.
func TestTX_MaxPacket(t *testing.T) {
	r := newRig(t, 0)
	r.sendTX(packet(net.Header{}, frame(net.MaxFrameSize, 1)))
	r.notify(net.TXQueue)
	if got := r.be.sent(); len(got) != 1 || len(got[0]) != net.MaxPacketSize {
		t.Fatalf("backend got %d packets", len(got))
	}
}

func TestTX_BackendError_Drops(t *testing.T) {
	r := newRig(t, 0)
	r.be.setWriteErr(syscall.EIO)
	r.sendTX(packet(net.Header{}, frame(60, 0)))
	r.notify(net.TXQueue)
	usedN(t, r.tx, 1)
	if s := r.dev.Stats(); s.TXDropBackend != 1 || s.TXPackets != 0 {
		t.Errorf("stats %+v", s)
	}
	r.be.setWriteErr(nil)
	r.sendTX(packet(net.Header{}, frame(60, 0)))
	r.notify(net.TXQueue)
	if got := r.be.sent(); len(got) != 1 {
		t.Errorf("after recovery the backend got %d packets", len(got))
	}
}

func TestTX_BrokenQueue(t *testing.T) {
	r := newRig(t, 0)
	r.tx.AddNextOutOfRange()
	for range 2 {
		if err := r.dev.Notify(net.TXQueue); !errors.Is(err, virtio.ErrNeedsReset) {
			t.Fatalf("Notify = %v, want ErrNeedsReset", err)
		}
	}
	// Receive goes on.
	r.rx.AddChain(nil, []int{2048})
	r.be.send(packet(net.Header{}, frame(60, 0)))
	r.waitIdle()
	usedN(t, r.rx, 1)
}

// TestTX_EventIdx: with VIRTIO_F_EVENT_IDX the device interrupts only
// when used.idx passes used_event.
func TestTX_EventIdx(t *testing.T) {
	r := newRig(t, virtio.FeatureEventIdx)
	r.tx.SetUsedEvent(1) // interrupt once the second buffer is used
	r.sendTX(packet(net.Header{}, frame(60, 0)))
	r.notify(net.TXQueue)
	if n := r.irq.count(net.TXQueue); n != 0 {
		t.Fatalf("%d interrupts before used_event", n)
	}
	r.sendTX(packet(net.Header{}, frame(60, 0)))
	r.notify(net.TXQueue)
	if n := r.irq.count(net.TXQueue); n != 1 {
		t.Fatalf("%d interrupts, want 1", n)
	}
	r.notify(net.TXQueue)
	if n := r.irq.count(net.TXQueue); n != 1 {
		t.Errorf("interrupt with nothing new used")
	}
}
