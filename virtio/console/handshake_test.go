package console_test

import (
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/vmm-dev/vmm/virtio/console"
)

// stdioPorts are the ports `vmm run` gives a workload, with pipes the
// test controls for stdin.
func stdioPorts(stdin io.Reader, stdout, stderr io.Writer) []console.Port {
	return []console.Port{
		{Name: "vmm.stdin", In: stdin},
		{Name: "vmm.stdout", Out: stdout},
		{Name: "vmm.stderr", Out: stderr},
		{Name: "vmm.control"},
	}
}

// pipe is an input whose writer the test holds; the reader ends with the
// test.
func pipe(t testing.TB) (*io.PipeReader, *io.PipeWriter) {
	r, w := io.Pipe()
	t.Cleanup(func() { w.Close() })
	return r, w
}

// TestHandshake_LikeLinux runs the multiport handshake as Linux's probe and
// control_work_handler do it and checks every message, in order:
// PORT_ADD for each port, then for each PORT_READY the host end's state
// and the name.
func TestHandshake_LikeLinux(t *testing.T) {
	stdin, _ := pipe(t)
	g := newGuest(t, stdioPorts(stdin, &sink{}, &sink{}))
	g.activate(featMultiport)
	got := g.handshake()
	want := []msg{
		{id: 0, event: evPortAdd, value: 1},
		{id: 1, event: evPortAdd, value: 1},
		{id: 2, event: evPortAdd, value: 1},
		{id: 3, event: evPortAdd, value: 1},
		{id: 0, event: evPortOpen, value: 1},
		{id: 0, event: evPortName, value: 1, name: "vmm.stdin"},
		{id: 1, event: evPortOpen, value: 1},
		{id: 1, event: evPortName, value: 1, name: "vmm.stdout"},
		{id: 2, event: evPortOpen, value: 1},
		{id: 2, event: evPortName, value: 1, name: "vmm.stderr"},
		{id: 3, event: evPortOpen, value: 0}, // no backend: closed
		{id: 3, event: evPortName, value: 1, name: "vmm.control"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("handshake:\n got %v\nwant %v", got, want)
	}
	if g.irq.count(ctlRX) == 0 {
		t.Error("the driver was never interrupted for control messages")
	}
	if s := g.dev.Stats(); s.ControlMalformed+s.ControlUnknown+s.ControlBadPort+s.ControlDropped+s.BadChains != 0 {
		t.Errorf("a clean handshake counted trouble: %+v", s)
	}
	for i := range 4 {
		if g.dev.GuestOpen(i) {
			t.Errorf("port %d open before the guest opened it", i)
		}
	}
}

// TestHandshake_ConsolePort: a console port is nominated before its other
// messages; Linux then opens it itself.
func TestHandshake_ConsolePort(t *testing.T) {
	var opened []bool
	g := newGuest(t, []console.Port{
		{Name: "tty", Console: true, Out: &sink{}, OnGuestOpen: func(open bool) { opened = append(opened, open) }},
		{Out: &sink{}}, // unnamed: no PORT_NAME
	})
	g.activate(featMultiport)
	got := g.handshake()
	want := []msg{
		{id: 0, event: evPortAdd, value: 1},
		{id: 1, event: evPortAdd, value: 1},
		{id: 0, event: evConsolePort, value: 1},
		{id: 0, event: evPortOpen, value: 1},
		{id: 0, event: evPortName, value: 1, name: "tty"},
		{id: 1, event: evPortOpen, value: 1},
	}
	if !slices.Equal(got, want) {
		t.Errorf("handshake:\n got %v\nwant %v", got, want)
	}
	g.setOpen(0, true) // init_port_console
	if !g.dev.GuestOpen(0) || !slices.Equal(opened, []bool{true}) {
		t.Errorf("console port not reported open: %v", opened)
	}
}

// TestHandshake_MessagesWaitForBuffers: DEVICE_READY before any control
// buffer is posted; the announcements wait and come in order.
func TestHandshake_MessagesWaitForBuffers(t *testing.T) {
	g := newGuest(t, []console.Port{{Name: "a"}, {Name: "b"}, {Name: "c"}})
	g.activate(featMultiport)
	g.send(msg{id: badID, event: evDeviceReady, value: 1})
	if got := g.recv(); len(got) != 0 {
		t.Fatalf("messages without buffers: %v", got)
	}
	g.postControlBuffers(2)
	got := g.recv() // reposts, so the third comes too
	want := []msg{{id: 0, event: evPortAdd, value: 1}, {id: 1, event: evPortAdd, value: 1}, {id: 2, event: evPortAdd, value: 1}}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestHandshake_DeviceReadyTwice: §5.3.6.2 forbids announcing a port that
// exists, so a repeated DEVICE_READY announces nothing.
func TestHandshake_DeviceReadyTwice(t *testing.T) {
	g := newGuest(t, []console.Port{{Name: "a"}, {Name: "b"}})
	g.activate(featMultiport)
	g.handshake()
	g.send(msg{id: badID, event: evDeviceReady, value: 1})
	if got := g.recv(); len(got) != 0 {
		t.Errorf("second DEVICE_READY answered with %v", got)
	}
}

// TestHandshake_DriverFailures: DEVICE_READY 0 and PORT_READY 0 get no
// answer and are reported.
func TestHandshake_DriverFailures(t *testing.T) {
	g := newGuest(t, []console.Port{{Name: "a", Out: &sink{}}})
	g.activate(featMultiport)
	g.postControlBuffers(4)
	g.send(msg{id: badID, event: evDeviceReady, value: 0})
	if got := g.recv(); len(got) != 0 {
		t.Errorf("DEVICE_READY 0 answered with %v", got)
	}
	g.send(msg{id: 0, event: evPortReady, value: 0})
	if got := g.recv(); len(got) != 0 {
		t.Errorf("PORT_READY 0 answered with %v", got)
	}
	for range 2 {
		select {
		case err := <-g.errs:
			if !errors.Is(err, console.ErrDriverSetup) {
				t.Errorf("OnError heard %v", err)
			}
		default:
			t.Error("a driver failure was not reported")
		}
	}
}

// TestHandshake_AfterReset: Linux resuming from hibernation resets the
// device and sends PORT_READY for its ports without DEVICE_READY; they
// are configured again. A fresh probe gets PORT_ADD again.
func TestHandshake_AfterReset(t *testing.T) {
	stdin, _ := pipe(t)
	g := newGuest(t, stdioPorts(stdin, &sink{}, &sink{}))
	g.activate(featMultiport)
	g.handshake()
	g.reset()
	g.layout()
	g.activate(featMultiport)
	g.postControlBuffers(8)
	g.send(msg{id: 1, event: evPortReady, value: 1})
	want := []msg{{id: 1, event: evPortOpen, value: 1}, {id: 1, event: evPortName, value: 1, name: "vmm.stdout"}}
	if got := g.recv(); !slices.Equal(got, want) {
		t.Errorf("resume: got %v, want %v", got, want)
	}

	g.reset()
	g.layout()
	g.activate(featMultiport)
	if got := g.handshake(); len(got) != 12 || got[0] != (msg{id: 0, event: evPortAdd, value: 1}) {
		t.Errorf("probe after reset: %v", got)
	}
}
