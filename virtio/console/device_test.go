package console_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/virtio"
	"github.com/vmm-dev/vmm/virtio/console"
)

func TestDevice_Identity(t *testing.T) {
	dev, err := console.New([]console.Port{{Name: "a"}, {Name: "b"}, {Name: "c"}}, console.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if dev.ID() != 3 {
		t.Errorf("ID %d, want 3 (§5.3.1)", dev.ID())
	}
	if dev.Features() != featMultiport {
		t.Errorf("features %#x, want MULTIPORT only", dev.Features())
	}
	sizes := dev.QueueMaxSizes()
	if len(sizes) != 8 {
		t.Fatalf("%d queues for 3 ports, want 8: port 0, control, ports 1 and 2", len(sizes))
	}
	for i, s := range sizes {
		if s != console.DefaultQueueSize {
			t.Errorf("queue %d: size %d", i, s)
		}
	}
	cfg := make([]byte, 16)
	for i := range cfg {
		cfg[i] = 0xee
	}
	dev.ReadConfig(0, cfg)
	want := []byte{0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0} // cols, rows, max_nr_ports, emerg_wr, past the end
	if !bytes.Equal(cfg, want) {
		t.Errorf("config space % x, want % x", cfg, want)
	}
	var n [4]byte
	dev.ReadConfig(4, n[:])
	if binary.LittleEndian.Uint32(n[:]) != 3 {
		t.Errorf("max_nr_ports read alone: % x", n)
	}
	dev.WriteConfig(8, []byte{'x', 0, 0, 0}) // emerg_wr, not offered: ignored
	dev.ReadConfig(0, cfg)
	if !bytes.Equal(cfg, want) {
		t.Errorf("config space after a write % x", cfg)
	}
}

// TestQueueNumbering checks the exported indices against §5.3.2's list.
func TestQueueNumbering(t *testing.T) {
	if console.ControlRXQueue != ctlRX || console.ControlTXQueue != ctlTX {
		t.Errorf("control queues %d, %d", console.ControlRXQueue, console.ControlTXQueue)
	}
	for port, want := range [][2]int{{0, 1}, {4, 5}, {6, 7}, {8, 9}} {
		if got := [2]int{console.RXQueue(port), console.TXQueue(port)}; got != want {
			t.Errorf("port %d: queues %v, want %v", port, got, want)
		}
	}
}

func TestNew_Rejects(t *testing.T) {
	tests := []struct {
		name  string
		ports []console.Port
		opts  console.Options
		want  error
	}{
		{"no ports", nil, console.Options{}, console.ErrBadPort},
		{"too many ports", make([]console.Port, console.MaxPorts+1), console.Options{}, console.ErrBadPort},
		{"same name twice", []console.Port{{Name: "vmm.stdout"}, {Name: "vmm.stdout"}}, console.Options{}, console.ErrBadPort},
		{"NUL in a name", []console.Port{{Name: "a\x00b"}}, console.Options{}, console.ErrBadPort},
		{"name not UTF-8", []console.Port{{Name: "\xff"}}, console.Options{}, console.ErrBadPort},
		{"name too long", []console.Port{{Name: strings.Repeat("n", console.MaxNameLen+1)}}, console.Options{}, console.ErrBadPort},
		{"queue size not a power of two", []console.Port{{}}, console.Options{QueueSize: 100}, console.ErrQueueSize},
		{"queue size 1", []console.Port{{}}, console.Options{QueueSize: 1}, console.ErrQueueSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := console.New(tt.ports, tt.opts); !errors.Is(err, tt.want) {
				t.Errorf("New = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := console.New([]console.Port{{}, {}, {Name: strings.Repeat("n", console.MaxNameLen)}}, console.Options{}); err != nil {
		t.Errorf("unnamed ports and a name of the largest size: %v", err)
	}
}

func TestActivate_Errors(t *testing.T) {
	g := newGuest(t, []console.Port{{Name: "a"}, {Name: "b"}})
	irq := &irqRecorder{}
	mem := guestmem.NewTest(4096)
	if err := g.dev.Activate(mem, featMultiport, make([]*virtio.Queue, 6), irq); !errors.Is(err, console.ErrNoQueue) {
		t.Errorf("no queues: %v", err)
	}
	if err := g.dev.Activate(mem, featMultiport, make([]*virtio.Queue, 3), irq); !errors.Is(err, console.ErrNoQueue) {
		t.Errorf("wrong number of queues: %v", err)
	}
	if err := g.dev.Notify(1); !errors.Is(err, console.ErrNotActive) {
		t.Errorf("Notify before Activate = %v", err)
	}
	g.activate(featMultiport)
	if err := g.dev.Activate(g.mem, featMultiport, make([]*virtio.Queue, 6), irq); !errors.Is(err, console.ErrNoQueue) {
		t.Errorf("second Activate without queues = %v", err)
	}
	for _, q := range []int{-1, 6, 7, 100} {
		if err := g.dev.Notify(q); !errors.Is(err, console.ErrQueueIndex) {
			t.Errorf("Notify(%d) = %v", q, err)
		}
	}
	g.reset()
	if err := g.dev.Notify(1); !errors.Is(err, console.ErrNotActive) {
		t.Errorf("Notify after Reset = %v", err)
	}
}

// TestNotify_QueueWithoutMultiport_NeedsReset: a driver that enables the
// control queues without negotiating MULTIPORT and notifies them (the
// hostile micro-guest does) breaks only the device. Before, the error was
// not a NEEDS_RESET one, and vmm logged a line per notify: a guest could
// fill the host's log as fast as it could write a register.
func TestNotify_QueueWithoutMultiport_NeedsReset(t *testing.T) {
	g := newGuest(t, []console.Port{{Name: "console", Out: &sink{}}, {Name: "unused", Out: &sink{}}})
	g.activate(0)
	for _, q := range []int{ctlRX, ctlTX, rxq(1), txq(1)} {
		err := g.dev.Notify(q)
		if !errors.Is(err, virtio.ErrNeedsReset) || !errors.Is(err, console.ErrQueueIndex) {
			t.Errorf("Notify(%d) = %v, want ErrQueueIndex and ErrNeedsReset", q, err)
		}
	}
}

// TestWithoutMultiport: a driver that does not negotiate MULTIPORT has
// only port 0, a console open from the start: input flows without a
// handshake, and the control queues do not exist.
func TestWithoutMultiport(t *testing.T) {
	out := &sink{}
	var opened []bool
	in := pattern(10000, 7)
	g := newGuest(t, []console.Port{
		{Name: "console", In: bytes.NewReader(in), Out: out, OnGuestOpen: func(open bool) { opened = append(opened, open) }},
		{Name: "unused", Out: &sink{}},
	})
	for range rxBuffers {
		g.drv[0].AddChain(nil, []int{pageSize})
	}
	g.activate(0)
	if got := g.readUntilEnd(0); !bytes.Equal(got, in) {
		t.Errorf("guest read %d bytes, want %d", len(got), len(in))
	}
	g.write(0, []byte("hello\n"))
	if got := out.bytes(); string(got) != "hello\n" {
		t.Errorf("host got %q", got)
	}
	for _, q := range []int{ctlRX, ctlTX, rxq(1), txq(1)} {
		if err := g.dev.Notify(q); !errors.Is(err, console.ErrQueueIndex) {
			t.Errorf("Notify(%d) = %v, want ErrQueueIndex", q, err)
		}
	}
	if !g.dev.GuestOpen(0) || g.dev.GuestOpen(1) {
		t.Errorf("open: port 0 %v, port 1 %v", g.dev.GuestOpen(0), g.dev.GuestOpen(1))
	}
	g.reset()
	if len(opened) != 2 || !opened[0] || opened[1] {
		t.Errorf("OnGuestOpen heard %v, want [true false]", opened)
	}
}

// TestReadConfig_PastEnd reads offsets a driver may probe.
func TestReadConfig_PastEnd(t *testing.T) {
	dev, err := console.New([]console.Port{{}}, console.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := []byte{1, 2, 3, 4}
	dev.ReadConfig(console.ConfigSize, b)
	if !bytes.Equal(b, make([]byte, 4)) {
		t.Errorf("past the end: % x", b)
	}
	dev.ReadConfig(1<<40, b)
	if !bytes.Equal(b, make([]byte, 4)) {
		t.Errorf("far past the end: % x", b)
	}
}

var _ io.Writer = (*sink)(nil)
