package main

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/virtio"
	vnet "github.com/vmm-dev/vmm/virtio/net"
	"github.com/vmm-dev/vmm/virtio/virtiotest"
)

// The virtio-net-model suite: net.Device alone, with no VM, no exits and
// no kernel: an in-memory backend that swallows every packet sent and
// always has one to receive. A fake driver (virtiotest lays each queue out
// in its half of the guest memory) keeps the queue full of one-buffer
// chains of netFrame-byte frames, as benchnet does, and refills it after
// each notification or interrupt. There is no peer: the figure is the
// ceiling the device puts on the guest figures of the virtio-net suite.

func init() { register(suite{name: "virtio-net-model", run: netModelSuite}) }

const (
	netModelN     = 50000
	netModelQueue = 16
	netModelHalf  = 1 << 20 // each queue's rings and buffers
)

// netModelDir is one direction a run measures.
type netModelDir struct {
	name   string
	metric string
	run    func(*testing.B, int) (time.Duration, error)
}

func netModelSuite(e *Env) ([]Result, error) {
	e.Logf("virtio-net-model: net.Device on an in-memory backend, %d frames a run, %d runs", netModelN, e.Runs)
	var out []Result
	for _, d := range []netModelDir{
		{"tx", "net.Device transmits %d-byte frames, in-memory backend", runNetModelTX},
		{"rx", "net.Device receives %d-byte frames, in-memory backend", runNetModelRX},
	} {
		r := Result{Suite: "virtio-net", Metric: fmt.Sprintf(d.metric, netFrame), Unit: "frames/s", HigherIsBetter: true,
			Note: fmt.Sprintf("no VM, no peer: fake driver on the device model, %d frames a run, %d-entry queue", netModelN, netModelQueue)}
		for i := -1; i < e.Runs; i++ {
			var took time.Duration
			var runErr error
			err := benchmarkOnce(func(b *testing.B) {
				if took, runErr = d.run(b, netModelN); runErr != nil {
					b.FailNow()
				}
			})
			if runErr != nil {
				err = runErr
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", r.Metric, err)
			}
			if i >= 0 {
				r.VMM.Values = append(r.VMM.Values, float64(netModelN)/took.Seconds())
			}
		}
		e.Logf("virtio-net-model %s: %s frames/s", d.name, formatValue(r.VMM.Median()))
		out = append(out, r)
	}
	return out, nil
}

// memNet is an in-memory Backend: sends are counted and dropped, and a
// read always finds a packet, until the device sets a read deadline
// (which it only does to stop its receiver) or closes it.
type memNet struct {
	pkt     []byte
	sent    atomic.Int64
	expired atomic.Bool
	closed  atomic.Bool
}

func (m *memNet) ReadPacket(p []byte) (int, error) {
	switch {
	case m.closed.Load():
		return 0, os.ErrClosed
	case m.expired.Load():
		return 0, os.ErrDeadlineExceeded
	}
	return copy(p, m.pkt), nil
}

func (m *memNet) TryReadPacket(p []byte) (int, error) { return m.ReadPacket(p) }

func (m *memNet) WritePacket(p []byte) error {
	m.sent.Add(1)
	return nil
}

func (m *memNet) SetReadDeadline(t time.Time) error {
	m.expired.Store(!t.IsZero())
	return nil
}

func (m *memNet) SetOffloads(uint64) error { return nil }

func (m *memNet) Close() error {
	m.closed.Store(true)
	return nil
}

// netModel is a device over a memNet, its two rings and its interrupts.
type netModel struct {
	be     *memNet
	dev    *vnet.Device
	rx, tx guestRing
	irq    [2]*chanIRQ
}

// queueIRQ routes a queue's signal to that queue's chanIRQ.
type queueIRQ [2]*chanIRQ

func (q queueIRQ) Signal(i int) error { return q[i].Signal(i) }

// newNetModel activates a device with netModelQueue one-buffer chains in
// each queue: readable packets (header and frame) to transmit, writable
// buffers to receive into. Nothing is published yet.
func newNetModel(b *testing.B) (*netModel, error) {
	pkt := make([]byte, vnet.HeaderSize+netFrame)
	for i := vnet.HeaderSize; i < len(pkt); i++ {
		pkt[i] = byte(i)
	}
	copy(pkt[vnet.HeaderSize:], netGuestMAC[:])
	m := &netModel{be: &memNet{pkt: pkt}, irq: [2]*chanIRQ{newChanIRQ(), newChanIRQ()}}
	dev, err := vnet.New(m.be, vnet.Options{MAC: vnet.MAC(netGuestMAC)})
	if err != nil {
		return nil, err
	}
	m.dev = dev
	ram := make([]byte, 2*netModelHalf)
	mem, err := guestmem.NewFromBytes([]guestmem.RegionSpec{{Start: 0, Size: uint64(len(ram))}}, [][]byte{ram})
	if err != nil {
		return nil, err
	}
	features := virtio.FeatureVersion1 | vnet.FeatureMAC
	var queues [2]*virtio.Queue
	for qi, half := range []guestmem.GuestAddr{0, netModelHalf} {
		view, err := guestmem.NewFromBytes([]guestmem.RegionSpec{{Start: half, Size: netModelHalf}}, [][]byte{ram[half : half+netModelHalf]})
		if err != nil {
			return nil, err
		}
		drv := virtiotest.New(b, view, netModelQueue)
		for i := range uint16(netModelQueue) {
			d := virtio.Descriptor{Addr: drv.Alloc(uint64(len(pkt))), Len: uint32(len(pkt)), Flags: virtio.DescFWrite}
			if qi == vnet.TXQueue {
				d = virtio.Descriptor{Addr: drv.Put(pkt), Len: uint32(len(pkt))}
			}
			drv.WriteDesc(i, d)
		}
		cfg := drv.Config(features)
		ring, err := newGuestRing(mem, cfg)
		if err != nil {
			return nil, err
		}
		if qi == vnet.RXQueue {
			m.rx = ring
		} else {
			m.tx = ring
		}
		q, err := virtio.NewQueue(netModelQueue)
		if err == nil {
			err = q.Enable(mem, cfg)
		}
		if err != nil {
			return nil, err
		}
		queues[qi] = q
	}
	if err := dev.Activate(mem, features, queues[:], queueIRQ(m.irq)); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *netModel) close() { m.dev.Close() }

// runNetModelTX transmits n frames, a queue's worth per notification, and
// returns the time they took.
func runNetModelTX(b *testing.B, n int) (time.Duration, error) {
	m, err := newNetModel(b)
	if err != nil {
		return 0, err
	}
	defer m.close()
	start := time.Now()
	for done := 0; done < n; {
		k := min(netModelQueue, n-done)
		for h := range uint16(k) {
			m.tx.publish(h)
		}
		if err := m.dev.Notify(vnet.TXQueue); err != nil {
			return 0, err
		}
		got := 0
		if err := m.tx.reap(func(uint16) error { got++; return nil }); err != nil {
			return 0, err
		}
		if got != k {
			return 0, fmt.Errorf("%d of %d frames returned after a notification", got, k)
		}
		done += k
	}
	took := time.Since(start)
	if s := m.be.sent.Load(); s != int64(n) {
		return 0, fmt.Errorf("the backend got %d frames, want %d", s, n)
	}
	return took, nil
}

// runNetModelRX receives n frames: every buffer posted, each returned one
// reposted after the interrupt, one notification per refill.
func runNetModelRX(b *testing.B, n int) (time.Duration, error) {
	m, err := newNetModel(b)
	if err != nil {
		return 0, err
	}
	defer m.close()
	stuck := make(chan struct{})
	watchdog := time.AfterFunc(modelTimeout, func() { close(stuck) })
	defer watchdog.Stop()
	start := time.Now()
	posted, got := 0, 0
	for ; posted < min(netModelQueue, n); posted++ {
		m.rx.publish(uint16(posted))
	}
	if err := m.dev.Notify(vnet.RXQueue); err != nil {
		return 0, err
	}
	for got < n {
		select {
		case <-m.irq[vnet.RXQueue].signalled:
		case <-stuck:
			return 0, fmt.Errorf("%d of %d frames received after %v", got, n, modelTimeout)
		}
		refilled := false
		err := m.rx.reap(func(head uint16) error {
			got++
			if posted < n {
				posted++
				refilled = true
				m.rx.publish(head)
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
		if refilled {
			if err := m.dev.Notify(vnet.RXQueue); err != nil {
				return 0, err
			}
		}
	}
	return time.Since(start), nil
}
