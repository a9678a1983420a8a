package console_test

import (
	"bytes"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/virtio"
	"github.com/vmm-dev/vmm/virtio/console"
	"github.com/vmm-dev/vmm/virtio/virtiotest"
)

// stdioGuest is a guest past the handshake with stdout and stderr open;
// it negotiated MULTIPORT and the given ring features.
func stdioGuest(t *testing.T, stdout, stderr *sink, features uint64) *guest {
	t.Helper()
	stdin, _ := pipe(t)
	g := newGuest(t, stdioPorts(stdin, stdout, stderr))
	g.activate(featMultiport | features)
	g.handshake()
	g.setOpen(1, true)
	g.setOpen(2, true)
	return g
}

// TestOutput_StdoutStderrApartByteExact interleaves binary writes of many
// sizes on stdout and stderr, in chains of one buffer, of several, and
// indirect, and 1 MiB writes split into 32 KiB chains: each writer gets
// exactly its stream.
func TestOutput_StdoutStderrApartByteExact(t *testing.T) {
	stdout, stderr := &sink{}, &sink{}
	g := stdioGuest(t, stdout, stderr, virtio.FeatureIndirectDesc)
	var wantOut, wantErr []byte
	for i, n := range []int{1, 2, 7, 100, 4095, 4096, 4097, 32 << 10, 1, 0, 65537} {
		o, e := pattern(n, byte(i)), pattern(n+3, byte(i+100))
		g.write(1, o)
		g.write(2, e)
		wantOut, wantErr = append(wantOut, o...), append(wantErr, e...)
	}
	// A chain of several buffers, and an indirect one.
	parts := [][]byte{pattern(10, 1), pattern(1000, 2), {0}, pattern(3000, 3)}
	g.writeChain(1, parts)
	wantOut = append(wantOut, bytes.Join(parts, nil)...)
	head := g.drv[txq(2)].AddIndirectChain(parts, nil)
	g.notify(txq(2))
	if u := g.drv[txq(2)].Used(); len(u) != 1 || u[0].ID != uint32(head) {
		t.Fatalf("indirect chain came back as %+v", u)
	}
	wantErr = append(wantErr, bytes.Join(parts, nil)...)
	// Large writes.
	big := pattern(1<<20, 42)
	g.write(1, big)
	g.write(2, big[:1<<19])
	wantOut, wantErr = append(wantOut, big...), append(wantErr, big[:1<<19]...)

	if got := stdout.bytes(); !bytes.Equal(got, wantOut) {
		t.Errorf("stdout: %d bytes, want %d; first difference at %d", len(got), len(wantOut), firstDiff(got, wantOut))
	}
	if got := stderr.bytes(); !bytes.Equal(got, wantErr) {
		t.Errorf("stderr: %d bytes, want %d; first difference at %d", len(got), len(wantErr), firstDiff(got, wantErr))
	}
	s := g.dev.Stats()
	if s.Ports[1].TXBytes != uint64(len(wantOut)) || s.Ports[2].TXBytes != uint64(len(wantErr)) || s.Ports[1].TXDropped+s.Ports[2].TXDropped != 0 {
		t.Errorf("stats %+v", s.Ports)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestOutput_InterruptsBatched: chains published together and notified
// once are returned with one interrupt.
func TestOutput_InterruptsBatched(t *testing.T) {
	stdout := &sink{}
	g := stdioGuest(t, stdout, &sink{}, 0)
	before := g.irq.count(txq(1))
	for i := range 10 {
		g.drv[txq(1)].AddChain([][]byte{{byte('0' + i)}}, nil)
	}
	g.notify(txq(1))
	if u := g.drv[txq(1)].Used(); len(u) != 10 {
		t.Fatalf("%d chains back, want 10", len(u))
	}
	if n := g.irq.count(txq(1)) - before; n != 1 {
		t.Errorf("%d interrupts for one batch, want 1", n)
	}
	if got := string(stdout.bytes()); got != "0123456789" {
		t.Errorf("stdout %q", got)
	}
}

// TestOutput_GuestOpenAndCloseSeen: the host hears the guest open and
// close stdout, and a close only after every byte written before it,
// even when the close is handled before the data's notification.
func TestOutput_GuestOpenAndCloseSeen(t *testing.T) {
	stdout := &sink{}
	var mu sync.Mutex
	var events []string
	stdin, _ := pipe(t)
	ports := stdioPorts(stdin, stdout, &sink{})
	ports[1].OnGuestOpen = func(open bool) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, map[bool]string{true: "open", false: "closed after " + string(stdout.bytes())}[open])
	}
	g := newGuest(t, ports)
	g.activate(featMultiport)
	g.handshake()
	g.setOpen(1, true)
	if !g.dev.GuestOpen(1) {
		t.Fatal("GuestOpen(1) false after PORT_OPEN 1")
	}
	g.write(1, []byte("first "))
	// The last write is in the ring, its kick not handled yet.
	g.drv[txq(1)].AddChain([][]byte{[]byte("last")}, nil)
	g.setOpen(1, false)
	if g.dev.GuestOpen(1) {
		t.Error("GuestOpen(1) true after PORT_OPEN 0")
	}
	g.setOpen(1, false) // no change: no event
	mu.Lock()
	got := slices.Clone(events)
	mu.Unlock()
	if want := []string{"open", "closed after first last"}; !slices.Equal(got, want) {
		t.Errorf("OnGuestOpen heard %q, want %q", got, want)
	}
	if u := g.drv[txq(1)].Used(); len(u) != 1 {
		t.Errorf("the last write came back as %+v", u)
	}
}

// TestOutput_WriterFails: bytes a failing writer refuses are dropped and
// counted, the chains still come back, OnError hears it once, and output
// resumes when the writer recovers.
func TestOutput_WriterFails(t *testing.T) {
	stdout := &sink{}
	g := stdioGuest(t, stdout, &sink{}, 0)
	boom := errors.New("boom")
	stdout.setErr(boom)
	g.write(1, pattern(100, 1))
	g.write(1, pattern(50, 2))
	stdout.setErr(nil)
	g.write(1, []byte("ok"))
	if got := string(stdout.bytes()); got != "ok" {
		t.Errorf("stdout %q", got)
	}
	s := g.dev.Stats().Ports[1]
	if s.TXDropped != 150 || s.TXWriteErrors != 2 || s.TXBytes != 2 {
		t.Errorf("stats %+v", s)
	}
	if err := <-g.errs; !errors.Is(err, boom) {
		t.Errorf("OnError heard %v", err)
	}
	select {
	case err := <-g.errs:
		t.Errorf("OnError heard a second failure: %v", err)
	default:
	}
}

// shortWriter takes half of every write and says nothing.
type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return len(p) / 2, nil }

// TestOutput_NoWriterOrShortWriter: a port without Out drops what the
// guest writes; a writer that takes less without an error fails.
func TestOutput_NoWriterOrShortWriter(t *testing.T) {
	g := newGuest(t, []console.Port{{Name: "in only", In: bytes.NewReader(nil)}, {Name: "short", Out: shortWriter{}}})
	g.activate(featMultiport)
	g.waitFeeder(0, "ended")
	g.handshake()
	g.write(0, pattern(10, 0))
	g.write(1, pattern(10, 0))
	s := g.dev.Stats()
	if s.Ports[0].TXDropped != 10 || s.Ports[1].TXBytes != 5 || s.Ports[1].TXDropped != 5 {
		t.Errorf("stats %+v", s.Ports)
	}
}

// blockingWriter takes each write only when the test lets it.
type blockingWriter struct {
	entered chan struct{}
	release chan struct{}
	sink
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	w.entered <- struct{}{}
	<-w.release
	return w.sink.Write(p)
}

// TestOutput_BackPressure: a writer that blocks holds the guest's chain;
// it comes back once the writer took the bytes.
func TestOutput_BackPressure(t *testing.T) {
	w := &blockingWriter{entered: make(chan struct{}), release: make(chan struct{})}
	stdin, _ := pipe(t)
	g := newGuest(t, []console.Port{{Name: "in", In: stdin}, {Name: "out", Out: w}})
	g.activate(featMultiport)
	g.handshake()
	head := g.drv[txq(1)].AddChain([][]byte{[]byte("held")}, nil)
	done := make(chan error)
	go func() { done <- g.dev.Notify(txq(1)) }()
	select {
	case <-w.entered:
	case <-time.After(testTimeout):
		t.Fatal("the writer was never called")
	}
	if n := g.drv[txq(1)].UsedIdx(); n != 0 {
		t.Errorf("chain returned while the writer holds it: used.idx %d", n)
	}
	close(w.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if u := g.drv[txq(1)].Used(); len(u) != 1 || u[0] != (virtiotest.UsedElem{ID: uint32(head)}) {
		t.Errorf("used %+v", u)
	}
	if got := string(w.bytes()); got != "held" {
		t.Errorf("writer got %q", got)
	}
}

// TestOutput_BrokenRing: a transmit chain that breaks the ring rules
// gives NEEDS_RESET, and nothing reaches the writer.
func TestOutput_BrokenRing(t *testing.T) {
	stdout := &sink{}
	g := stdioGuest(t, stdout, &sink{}, 0)
	g.drv[txq(1)].AddNextOutOfRange()
	if err := g.dev.Notify(txq(1)); !errors.Is(err, virtio.ErrNeedsReset) {
		t.Errorf("Notify = %v, want ErrNeedsReset", err)
	}
	if n := len(stdout.bytes()); n != 0 {
		t.Errorf("writer got %d bytes", n)
	}
}
