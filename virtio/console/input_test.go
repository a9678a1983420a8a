package console_test

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/vmm-dev/vmm/virtio"
	"github.com/vmm-dev/vmm/virtio/console"
	"github.com/vmm-dev/vmm/virtio/virtiotest"
)

// feed writes data to w and closes it, on a goroutine, as the host's stdin
// would; the returned channel closes when it is done.
func feed(w *io.PipeWriter, data []byte) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Write(data)
		w.Close()
	}()
	return done
}

// TestInput_AfterOpenThenEOF: stdin waits until the guest opens the port
// (Linux throws away data on a closed port), then arrives byte-exact over
// many page-sized buffers; once the guest has all of it, PORT_OPEN 0 says
// the host closed its end, so the guest's read returns end of file.
func TestInput_AfterOpenThenEOF(t *testing.T) {
	stdin, w := pipe(t)
	g := newGuest(t, stdioPorts(stdin, &sink{}, &sink{}))
	g.activate(featMultiport)
	g.handshake()
	data := append(pattern(100<<10+123, 9), "hello\n"...)
	fed := feed(w, data)

	g.waitFeeder(0, "open")
	if n := g.drv[rxq(0)].UsedIdx(); n != 0 {
		t.Fatalf("%d buffers filled before the guest opened the port", n)
	}
	// When the driver is interrupted for the close, every byte must
	// already be in its receive buffers.
	var usedAtClose atomic.Int64
	usedAtClose.Store(-1)
	g.irq.setHook(func(q int) {
		if q == ctlRX {
			usedAtClose.Store(int64(g.drv[rxq(0)].UsedIdx()))
		}
	})
	g.setOpen(0, true)
	got := g.readUntilEnd(0)
	g.irq.setHook(nil)
	<-fed
	if !bytes.Equal(got, data) {
		t.Fatalf("guest read %d bytes, want %d; first difference at %d", len(got), len(data), firstDiff(got, data))
	}
	if want := int64((len(data) + pageSize - 1) / pageSize); usedAtClose.Load() != want {
		t.Errorf("%d buffers used when the close was signalled, want all %d", usedAtClose.Load(), want)
	}
	if msgs := g.recv(); !slices.Equal(msgs, []msg{{id: 0, event: evPortOpen, value: 0}}) {
		t.Errorf("control messages after EOF: %v", msgs)
	}
	if g.dev.HostOpen(0) {
		t.Error("host end still open")
	}
	s := g.dev.Stats().Ports[0]
	if s.RXBytes != uint64(len(data)) || s.RXBufferWaits == 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestInput_Empty: an input at EOF before the handshake: the port is
// announced closed on the host side, so the guest reads EOF at once.
func TestInput_Empty(t *testing.T) {
	g := newGuest(t, []console.Port{{Name: "vmm.stdin", In: bytes.NewReader(nil)}})
	g.activate(featMultiport)
	g.waitFeeder(0, "ended")
	want := []msg{
		{id: 0, event: evPortAdd, value: 1},
		{id: 0, event: evPortOpen, value: 0},
		{id: 0, event: evPortName, value: 1, name: "vmm.stdin"},
	}
	if got := g.handshake(); !slices.Equal(got, want) {
		t.Errorf("handshake %v, want %v", got, want)
	}
	g.setOpen(0, true)
	g.waitFeeder(0, "ended")
	if n := g.drv[rxq(0)].UsedIdx(); n != 0 {
		t.Errorf("%d buffers used for empty input", n)
	}
	if msgs := g.recv(); len(msgs) != 0 {
		t.Errorf("a second close: %v", msgs)
	}
}

// TestInput_OneInterruptPerChunk: a 32 KiB chunk fills eight buffers and
// interrupts the driver once.
func TestInput_OneInterruptPerChunk(t *testing.T) {
	stdin, w := pipe(t)
	g := newGuest(t, stdioPorts(stdin, &sink{}, &sink{}))
	g.activate(featMultiport)
	g.handshake()
	g.setOpen(0, true)
	g.waitFeeder(0, "input")
	if _, err := w.Write(pattern(32<<10, 1)); err != nil { // one Read takes it all
		t.Fatal(err)
	}
	virtiotest.WaitFor(t, "32 KiB delivered", func() bool { return g.dev.Stats().Ports[0].RXBytes == 32<<10 })
	g.waitFeeder(0, "input")
	if u := g.drv[rxq(0)].UsedIdx(); u != 8 {
		t.Errorf("%d buffers used, want 8", u)
	}
	if n := g.irq.count(rxq(0)); n != 1 {
		t.Errorf("%d interrupts, want 1", n)
	}
}

// TestInput_GuestClosesMidStream: once the guest closes the port, nothing
// more goes into its buffers; what the host had not delivered waits for
// the next open and arrives whole.
func TestInput_GuestClosesMidStream(t *testing.T) {
	stdin, w := pipe(t)
	g := newGuest(t, stdioPorts(stdin, &sink{}, &sink{}))
	g.activate(featMultiport)
	g.handshake()
	data := pattern(200<<10, 3)
	fed := feed(w, data)
	g.setOpen(0, true)
	g.waitFeeder(0, "buffers")
	g.setOpen(0, false)
	g.waitFeeder(0, "open")
	got := g.readRX(0) // reposts and kicks: the feeder must not use them
	if len(got) != rxBuffers*pageSize {
		t.Fatalf("first open: %d bytes", len(got))
	}
	g.waitFeeder(0, "open")
	if u := g.drv[rxq(0)].Used(); len(u) != 0 {
		t.Fatalf("buffers filled while the guest had the port closed: %+v", u)
	}
	g.setOpen(0, true)
	got = append(got, g.readUntilEnd(0)...)
	<-fed
	if !bytes.Equal(got, data) {
		t.Errorf("guest read %d bytes, want %d; first difference at %d", len(got), len(data), firstDiff(got, data))
	}
}

// failingReader returns data, then an error.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestInput_ReadError: an input that fails ends like EOF, after what it
// read, and OnError hears why.
func TestInput_ReadError(t *testing.T) {
	boom := errors.New("boom")
	g := newGuest(t, []console.Port{{Name: "in", In: &failingReader{data: []byte("partial"), err: boom}}})
	g.activate(featMultiport)
	g.handshake()
	g.setOpen(0, true)
	if got := string(g.readUntilEnd(0)); got != "partial" {
		t.Errorf("guest read %q", got)
	}
	if msgs := g.recv(); !slices.Equal(msgs, []msg{{id: 0, event: evPortOpen, value: 0}}) {
		t.Errorf("control messages: %v", msgs)
	}
	if err := <-g.errs; !errors.Is(err, boom) {
		t.Errorf("OnError heard %v", err)
	}
}

// TestInput_BadReceiveChains: receive chains with a device-readable
// buffer are returned unused and counted; the data goes to the next good
// buffer.
func TestInput_BadReceiveChains(t *testing.T) {
	g := newGuest(t, []console.Port{{Name: "in", In: bytes.NewReader([]byte("data"))}})
	g.activate(featMultiport)
	g.postControlBuffers(8)
	g.send(msg{id: badID, event: evDeviceReady, value: 1})
	q := g.drv[rxq(0)]
	bad := q.AddChain([][]byte{{1}}, []int{pageSize})
	good := q.AddChain(nil, []int{pageSize})
	g.send(msg{id: 0, event: evPortReady, value: 1})
	g.setOpen(0, true)
	g.waitFeeder(0, "ended")
	u := q.Used()
	if len(u) != 2 || u[0].ID != uint32(bad) || u[0].Len != 0 || u[1].ID != uint32(good) || u[1].Len != 4 {
		t.Fatalf("used %+v", u)
	}
	if got := string(q.Written(good)[:4]); got != "data" {
		t.Errorf("good buffer holds %q", got)
	}
	if n := g.dev.Stats().BadChains; n != 1 {
		t.Errorf("BadChains %d", n)
	}
}

// TestInput_BrokenRing: a receive ring the driver broke stops the feeder;
// OnError and the next Notify say NEEDS_RESET.
func TestInput_BrokenRing(t *testing.T) {
	g := newGuest(t, []console.Port{{Name: "in", In: bytes.NewReader([]byte("data"))}})
	g.activate(featMultiport)
	g.drv[rxq(0)].AddNextOutOfRange()
	g.postControlBuffers(4)
	g.send(msg{id: 0, event: evPortReady, value: 1})
	g.setOpen(0, true)
	g.waitFeeder(0, "stopped")
	if err := <-g.errs; !errors.Is(err, virtio.ErrNeedsReset) {
		t.Fatalf("OnError heard %v", err)
	}
	if err := g.dev.Notify(rxq(0)); !errors.Is(err, virtio.ErrNeedsReset) {
		t.Errorf("Notify = %v", err)
	}
}
