package rng_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/virtio"
	"github.com/vmm-dev/vmm/virtio/rng"
	"github.com/vmm-dev/vmm/virtio/virtiotest"
)

// counter is a deterministic source: 0, 1, 2, ... wrapping at 256, handed
// out a few bytes per Read to exercise short reads.
type counter struct {
	next  byte
	reads int
	err   error
}

func (c *counter) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	c.reads++
	n := min(len(p), 7000)
	for i := range n {
		p[i] = c.next
		c.next++
	}
	return n, nil
}

// seq is the counter's output from start, n bytes long.
func seq(start byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

type irqRecorder struct{ signals int }

func (r *irqRecorder) Signal(q int) error {
	r.signals++
	return nil
}

type rig struct {
	dev *rng.Device
	drv *virtiotest.Driver
	src *counter
	irq *irqRecorder
}

func newRig(t *testing.T, features uint64) *rig {
	t.Helper()
	src := &counter{}
	dev := rng.New(src)
	mem := guestmem.NewTest(1 << 20)
	drv := virtiotest.New(t, mem, 16)
	q, err := virtio.NewQueue(dev.QueueMaxSizes()[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Enable(mem, drv.Config(features)); err != nil {
		t.Fatal(err)
	}
	irq := &irqRecorder{}
	if err := dev.Activate(mem, features, []*virtio.Queue{q}, irq); err != nil {
		t.Fatal(err)
	}
	return &rig{dev: dev, drv: drv, src: src, irq: irq}
}

func (r *rig) notify(t *testing.T) {
	t.Helper()
	if err := r.dev.Notify(0); err != nil {
		t.Fatalf("Notify: %v", err)
	}
}

func TestDevice_Identity(t *testing.T) {
	dev := rng.New(&counter{})
	if dev.ID() != virtio.IDRNG || dev.Features() != 0 {
		t.Errorf("ID %d, features %#x", dev.ID(), dev.Features())
	}
	if got := dev.QueueMaxSizes(); len(got) != 1 {
		t.Errorf("QueueMaxSizes = %v, want one queue", got)
	}
	b := []byte{1, 2, 3}
	dev.ReadConfig(0, b)
	if !bytes.Equal(b, make([]byte, 3)) {
		t.Errorf("config space reads % x", b)
	}
}

func TestNotify_FillsWritableBuffers(t *testing.T) {
	r := newRig(t, 0)
	h0 := r.drv.AddChain(nil, []int{10, 20})
	h1 := r.drv.AddChain([][]byte{{9, 9}}, []int{5}) // readable part ignored
	r.notify(t)
	u := r.drv.Used()
	if len(u) != 2 || u[0] != (virtiotest.UsedElem{ID: uint32(h0), Len: 30}) || u[1] != (virtiotest.UsedElem{ID: uint32(h1), Len: 5}) {
		t.Fatalf("used %+v", u)
	}
	if got := r.drv.Written(h0); !bytes.Equal(got, seq(0, 30)) {
		t.Errorf("chain 0 got % x", got)
	}
	if got := r.drv.Written(h1); !bytes.Equal(got, seq(30, 5)) {
		t.Errorf("chain 1 got % x", got)
	}
	if r.irq.signals != 1 {
		t.Errorf("%d interrupts, want 1", r.irq.signals)
	}
}

func TestNotify_BoundedPerRequest(t *testing.T) {
	r := newRig(t, 0)
	head := r.drv.AddChain(nil, []int{100 << 10})
	r.notify(t)
	u := r.drv.Used()
	if len(u) != 1 || u[0].Len != rng.MaxBytesPerRequest {
		t.Fatalf("used %+v, want %d bytes", u, rng.MaxBytesPerRequest)
	}
	got := r.drv.Written(head)
	if !bytes.Equal(got[:rng.MaxBytesPerRequest], seq(0, rng.MaxBytesPerRequest)) ||
		!bytes.Equal(got[rng.MaxBytesPerRequest:], make([]byte, len(got)-rng.MaxBytesPerRequest)) {
		t.Error("bytes past the bound were written")
	}
}

func TestNotify_NoWritableBuffer(t *testing.T) {
	r := newRig(t, 0)
	r.drv.AddChain([][]byte{{1}}, nil)
	r.notify(t)
	if u := r.drv.Used(); len(u) != 1 || u[0].Len != 0 {
		t.Fatalf("used %+v", u)
	}
	if r.src.reads != 0 {
		t.Errorf("source read %d times for nothing", r.src.reads)
	}
}

// TestNotify_SourceFails: the chains still come back, with nothing
// written, and Notify reports the source's error.
func TestNotify_SourceFails(t *testing.T) {
	r := newRig(t, 0)
	boom := errors.New("boom")
	r.src.err = boom
	r.drv.AddChain(nil, []int{16})
	r.drv.AddChain(nil, []int{16})
	if err := r.dev.Notify(0); !errors.Is(err, boom) || errors.Is(err, virtio.ErrNeedsReset) {
		t.Fatalf("Notify = %v, want the source's error", err)
	}
	if u := r.drv.Used(); len(u) != 2 || u[0].Len != 0 || u[1].Len != 0 {
		t.Errorf("used %+v", u)
	}
	r.src.err = nil
	r.drv.AddChain(nil, []int{16})
	r.notify(t)
	if u := r.drv.Used(); len(u) != 1 || u[0].Len != 16 {
		t.Errorf("after recovery: used %+v", u)
	}
}

func TestNotify_InterruptOnlyWhenNeeded(t *testing.T) {
	r := newRig(t, virtio.FeatureEventIdx)
	r.drv.SetUsedEvent(1) // interrupt once used.idx passes 1
	r.drv.AddChain(nil, []int{4})
	r.notify(t)
	if r.irq.signals != 0 {
		t.Fatal("interrupt before used_event")
	}
	r.drv.AddChain(nil, []int{4})
	r.notify(t)
	if r.irq.signals != 1 {
		t.Fatalf("%d interrupts, want 1", r.irq.signals)
	}
	r.notify(t)
	if r.irq.signals != 1 {
		t.Errorf("interrupt with nothing new used")
	}
}

func TestNotify_Errors(t *testing.T) {
	r := newRig(t, 0)
	if err := r.dev.Notify(1); !errors.Is(err, rng.ErrQueueIndex) {
		t.Errorf("Notify(1) = %v", err)
	}
	r.drv.AddNextOutOfRange()
	if err := r.dev.Notify(0); !errors.Is(err, virtio.ErrNeedsReset) {
		t.Errorf("broken chain: Notify = %v, want ErrNeedsReset", err)
	}
	r.dev.Reset()
	if err := r.dev.Notify(0); !errors.Is(err, rng.ErrNotActive) {
		t.Errorf("after Reset: Notify = %v", err)
	}
	if err := rng.New(&counter{}).Activate(nil, 0, nil, &irqRecorder{}); !errors.Is(err, rng.ErrNoQueue) {
		t.Errorf("Activate without queues = %v", err)
	}
}

func TestGetrandom(t *testing.T) {
	a, b := make([]byte, 64), make([]byte, 64)
	for _, p := range [][]byte{a, b} {
		if n, err := (rng.Getrandom{}).Read(p); err != nil || n != len(p) {
			t.Fatalf("Read = %d, %v", n, err)
		}
	}
	if bytes.Equal(a, b) || bytes.Equal(a, make([]byte, 64)) {
		t.Error("getrandom returned repeating bytes")
	}
}
