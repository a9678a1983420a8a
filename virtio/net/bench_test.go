package net_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/virtio"
	"github.com/vmm-dev/vmm/virtio/net"
	"github.com/vmm-dev/vmm/virtio/virtiotest"
)

// The benchmarks move 1514-byte frames (1500 bytes of payload) in batches
// of a queue's worth, one notification or interrupt per batch, and report
// packets per second. The fake backend ones measure the device alone; the
// TAP ones add the kernel, in a namespace of their own.

const benchFrame = 1514

// fixedChains writes n one-buffer chains into descriptor slots 0..n-1,
// each a readable copy of pkt, or a writable buffer of size bytes when pkt
// is nil, so a benchmark can publish them again and again.
func fixedChains(drv *virtiotest.Driver, n int, pkt []byte, size int) []uint16 {
	heads := make([]uint16, n)
	for i := range heads {
		d := virtio.Descriptor{Addr: drv.Put(pkt), Len: uint32(len(pkt))}
		if pkt == nil {
			d = virtio.Descriptor{Addr: drv.Alloc(uint64(size)), Len: uint32(size), Flags: virtio.DescFWrite}
		}
		drv.WriteDesc(uint16(i), d)
		heads[i] = uint16(i)
	}
	return heads
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
}

// benchTX transmits b.N packets through r.
func benchTX(b *testing.B, r *rig) {
	heads := fixedChains(r.tx, testQueueSize, packet(net.Header{}, frame(benchFrame, 1)), 0)
	b.SetBytes(benchFrame)
	b.ResetTimer()
	for done := 0; done < b.N; {
		k := min(len(heads), b.N-done)
		for _, h := range heads[:k] {
			r.tx.Publish(h)
		}
		r.notify(net.TXQueue)
		if u := r.tx.Used(); len(u) != k {
			b.Fatalf("%d used, want %d", len(u), k)
		}
		done += k
	}
	reportRate(b)
	if s := r.dev.Stats(); s.TXPackets != uint64(b.N) {
		b.Fatalf("sent %d of %d (stats %+v)", s.TXPackets, b.N, s)
	}
}

func BenchmarkTX(b *testing.B) {
	be := newFakeBackend()
	be.discard = true
	r := newRigOn(b, be, 0)
	r.activate()
	benchTX(b, r)
}

func BenchmarkTXToTAP(b *testing.B) {
	env := newTAPEnv(b, true)
	r := newRigOn(b, env.tap, 0)
	r.activate()
	benchTX(b, r)
}

// BenchmarkRX: the backend hands over a queue's worth of packets at once;
// the driver reposts the buffers once the receiver has delivered them and
// waits for more.
func BenchmarkRX(b *testing.B) {
	be := newFakeBackend()
	be.onIdle = make(chan struct{}, 1)
	r := newRigOn(b, be, 0)
	heads := fixedChains(r.rx, testQueueSize, nil, 2048)
	r.activate()
	<-be.onIdle // the receiver's first wait
	pkt := packet(net.Header{}, frame(benchFrame, 1))
	batch := make([][]byte, len(heads))
	for i := range batch {
		batch[i] = pkt
	}
	b.SetBytes(benchFrame)
	b.ResetTimer()
	for done := 0; done < b.N; {
		k := min(len(heads), b.N-done)
		for _, h := range heads[:k] {
			r.rx.Publish(h)
		}
		be.send(batch[:k]...)
		<-be.onIdle
		if u := r.rx.Used(); len(u) != k {
			b.Fatalf("%d used, want %d", len(u), k)
		}
		done += k
	}
	reportRate(b)
}

// BenchmarkRXFromTAP: a packet socket sends a queue's worth of frames into
// tap0; the driver reposts the buffers once they are delivered. Not for
// -race: like a guest, the driver reads the ring while the receiver runs.
func BenchmarkRXFromTAP(b *testing.B) {
	env := newTAPEnv(b, true)
	r := newRigOn(b, env.tap, 0)
	r.irq.ch = make(chan int, 1)
	heads := fixedChains(r.rx, testQueueSize, nil, 2048)
	for _, h := range heads {
		r.rx.Publish(h)
	}
	r.activate()
	f := frame(benchFrame, 1)
	b.SetBytes(benchFrame)
	b.ResetTimer()
	for done := 0; done < b.N; {
		k := min(len(heads), b.N-done)
		want := r.dev.Stats().RXPackets + uint64(k)
		for range k {
			if _, err := syscall.Write(env.sock, f); err != nil {
				b.Fatal(err)
			}
		}
		for r.dev.Stats().RXPackets < want {
			select {
			case <-r.irq.ch:
			case <-time.After(testTimeout):
				b.Fatalf("received %d packets, want %d", r.dev.Stats().RXPackets, want)
			}
		}
		r.rx.Used()
		for _, h := range heads[:k] {
			r.rx.Publish(h)
		}
		r.notify(net.RXQueue)
		done += k
	}
	reportRate(b)
}
