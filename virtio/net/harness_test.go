package net_test

import (
	"bytes"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/virtio"
	"github.com/vmm-dev/vmm/virtio/net"
	"github.com/vmm-dev/vmm/virtio/virtiotest"
)

const (
	testQueueSize = 16
	// testHalf is each queue's share of the rig's guest memory: its rings
	// and the driver's buffers.
	testHalf = 2 << 20
	// testTimeout bounds every wait for the receive goroutine; tests
	// never assert on timing.
	testTimeout = virtiotest.Timeout
	// testEtherType is IEEE 802 local experimental EtherType 1, which no
	// protocol on the host answers.
	testEtherType = 0x88b5
)

var testMAC = net.MAC{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}

// fakeBackend is an in-memory Backend: packets a test queues come out of
// ReadPacket in order, and WritePacket records what the device sent. Its
// lock is what orders the receive goroutine's guest memory accesses
// before a test's: see waitIdle.
type fakeBackend struct {
	mu       sync.Mutex
	cond     *sync.Cond
	queue    [][]byte
	waiting  bool // a ReadPacket waits with nothing queued
	expired  bool // a read deadline is set: the device only sets past ones
	closed   bool
	written  [][]byte
	writeErr error
	offErr   error
	offloads []uint64
	discard  bool          // WritePacket keeps nothing, for benchmarks
	onIdle   chan struct{} // if set, gets a token each time ReadPacket starts waiting
}

func newFakeBackend() *fakeBackend {
	f := &fakeBackend{}
	f.cond = sync.NewCond(&f.mu)
	return f
}

func (f *fakeBackend) ReadPacket(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		if n, err, ok := f.take(p); ok {
			return n, err
		}
		f.waiting = true
		if f.onIdle != nil {
			select {
			case f.onIdle <- struct{}{}:
			default:
			}
		}
		f.cond.Wait()
		f.waiting = false
	}
}

func (f *fakeBackend) TryReadPacket(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n, err, ok := f.take(p); ok {
		return n, err
	}
	return 0, net.ErrNoPacket
}

// take returns the next packet, or an error, if there is either. The
// caller holds f.mu.
func (f *fakeBackend) take(p []byte) (int, error, bool) {
	switch {
	case f.closed:
		return 0, os.ErrClosed, true
	case f.expired:
		return 0, os.ErrDeadlineExceeded, true
	case len(f.queue) > 0:
		pkt := f.queue[0]
		f.queue = f.queue[1:]
		return copy(p, pkt), nil, true
	}
	return 0, nil, false
}

func (f *fakeBackend) WritePacket(p []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.writeErr != nil {
		return f.writeErr
	}
	if !f.discard {
		f.written = append(f.written, bytes.Clone(p))
	}
	return nil
}

func (f *fakeBackend) SetReadDeadline(t time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.expired = !t.IsZero()
	f.cond.Broadcast()
	return nil
}

func (f *fakeBackend) SetOffloads(features uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.offloads = append(f.offloads, features)
	return f.offErr
}

func (f *fakeBackend) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	f.cond.Broadcast()
	return nil
}

// send queues packets for the device, all at once.
func (f *fakeBackend) send(pkts ...[]byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queue = append(f.queue, pkts...) // ReadPacket copies, so they stay the caller's
	f.cond.Broadcast()
}

// idle reports whether the receive goroutine waits in ReadPacket with
// nothing queued: it has delivered everything and signalled the driver,
// and touches guest memory no more until the next send.
func (f *fakeBackend) idle() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.waiting && len(f.queue) == 0
}

// sent returns the packets the device wrote, and forgets them.
func (f *fakeBackend) sent() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.written
	f.written = nil
	return w
}

func (f *fakeBackend) setWriteErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writeErr = err
}

// irqRecorder counts signals per queue, from any goroutine.
type irqRecorder struct {
	signals [2]atomic.Int64
	ch      chan int // if set, gets the queue of each signal it has room for
}

func (r *irqRecorder) Signal(q int) error {
	if q < 0 || q > 1 {
		return errors.New("no such queue")
	}
	r.signals[q].Add(1)
	if r.ch != nil {
		select {
		case r.ch <- q:
		default:
		}
	}
	return nil
}

func (r *irqRecorder) count(q int) int64 { return r.signals[q].Load() }

// rig is a network device activated on two fake drivers, one per queue,
// each laying out its ring in its own half of one guest memory.
type rig struct {
	t        testing.TB
	dev      *net.Device
	be       *fakeBackend
	mem      *guestmem.Memory
	rx, tx   *virtiotest.Driver
	rxq, txq *virtio.Queue
	irq      *irqRecorder
	errs     chan error // what OnError heard
	features uint64
	ram      []byte
}

// newRig activates a device over a fake backend with the given negotiated
// features and waits for the receive goroutine to settle.
func newRig(t testing.TB, features uint64) *rig {
	t.Helper()
	r := newRigOn(t, newFakeBackend(), features)
	r.activate()
	return r
}

// newRigOn makes a device over backend with fresh rings, not yet
// activated.
func newRigOn(t testing.TB, backend net.Backend, features uint64) *rig {
	t.Helper()
	r := &rig{t: t, irq: &irqRecorder{}, errs: make(chan error, 16), features: features}
	r.be, _ = backend.(*fakeBackend)
	dev, err := net.New(backend, net.Options{MAC: testMAC, OnError: func(err error) {
		select {
		case r.errs <- err:
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	r.dev = dev
	t.Cleanup(r.reset)
	r.ram = make([]byte, 2*testHalf)
	r.mem = memView(t, 0, r.ram)
	r.newDrivers()
	return r
}

// newDrivers zeroes guest memory and lays out both rings.
func (r *rig) newDrivers() {
	clear(r.ram)
	r.rx = virtiotest.New(r.t, memView(r.t, 0, r.ram[:testHalf]), testQueueSize)
	r.tx = virtiotest.New(r.t, memView(r.t, testHalf, r.ram[testHalf:]), testQueueSize)
}

// memView is guest memory at start over buf.
func memView(t testing.TB, start guestmem.GuestAddr, buf []byte) *guestmem.Memory {
	t.Helper()
	m, err := guestmem.NewFromBytes([]guestmem.RegionSpec{{Start: start, Size: uint64(len(buf))}}, [][]byte{buf})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// activate enables fresh queues on the drivers' rings and activates the
// device on them; over the fake backend, it waits for the receive
// goroutine to settle.
func (r *rig) activate() {
	r.t.Helper()
	r.rxq, r.txq = r.enable(r.rx), r.enable(r.tx)
	if err := r.dev.Activate(r.mem, r.features, []*virtio.Queue{r.rxq, r.txq}, r.irq); err != nil {
		r.t.Fatal(err)
	}
	if r.be != nil {
		r.waitIdle()
	}
}

func (r *rig) enable(drv *virtiotest.Driver) *virtio.Queue {
	r.t.Helper()
	q, err := virtio.NewQueue(net.DefaultQueueSize)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := q.Enable(r.mem, drv.Config(r.features)); err != nil {
		r.t.Fatal(err)
	}
	return q
}

// reset resets the device, failing the test if that does not return.
func (r *rig) reset() {
	r.t.Helper()
	virtiotest.MustReturn(r.t, "Reset", r.dev.Reset)
}

// waitIdle waits until the receive goroutine has taken every queued
// packet and waits for more.
func (r *rig) waitIdle() {
	r.t.Helper()
	virtiotest.WaitFor(r.t, "the receiver to go idle", r.be.idle)
}

// waitParked waits until the receive goroutine has waited for buffers n
// times in all: the counter moves after its last guest memory access.
func (r *rig) waitParked(n uint64) {
	r.t.Helper()
	virtiotest.WaitFor(r.t, "the receiver to wait for buffers", func() bool { return r.dev.Stats().RXBufferWaits >= n })
}

// notify runs Notify(q), which must succeed.
func (r *rig) notify(q int) {
	r.t.Helper()
	if err := r.dev.Notify(q); err != nil {
		r.t.Fatalf("Notify(%d): %v", q, err)
	}
}

// usedN returns the used entries of drv since the last call, which must
// number n.
func usedN(t testing.TB, drv *virtiotest.Driver, n int) []virtiotest.UsedElem {
	t.Helper()
	u := drv.Used()
	if len(u) != n {
		t.Fatalf("%d used entries, want %d: %+v", len(u), n, u)
	}
	return u
}

// frame is an Ethernet frame of n bytes (at least 14): broadcast, from
// testMAC, testEtherType, then a pattern that starts at seed.
func frame(n int, seed byte) []byte {
	b := make([]byte, n)
	copy(b, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(b[6:], testMAC[:])
	b[12], b[13] = testEtherType>>8, testEtherType&0xff
	for i := 14; i < n; i++ {
		b[i] = seed + byte(i) + byte(i>>8)*3
	}
	return b
}

// packet is h followed by f.
func packet(h net.Header, f []byte) []byte { return append(h.Append(nil), f...) }

// withNumBuffers is pkt with num_buffers set to n.
func withNumBuffers(pkt []byte, n uint16) []byte {
	b := bytes.Clone(pkt)
	b[10], b[11] = byte(n), byte(n>>8)
	return b
}

// virtiotestUsed is the used element for head with n bytes written.
func virtiotestUsed(head uint16, n uint32) virtiotest.UsedElem {
	return virtiotest.UsedElem{ID: uint32(head), Len: n}
}
