package console_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/vmm-dev/vmm/virtio"
	"github.com/vmm-dev/vmm/virtio/console"
	"github.com/vmm-dev/vmm/virtio/virtiotest"
)

// threePorts is a device for the hostile tests: stdout, stderr and a port
// with no backend.
func threePorts() []console.Port {
	return []console.Port{{Name: "vmm.stdout", Out: &sink{}}, {Name: "vmm.stderr", Out: &sink{}}, {Name: "vmm.control"}}
}

// wantHandshake is threePorts' handshake.
var wantHandshake = []msg{
	{id: 0, event: evPortAdd, value: 1},
	{id: 1, event: evPortAdd, value: 1},
	{id: 2, event: evPortAdd, value: 1},
	{id: 0, event: evPortOpen, value: 1},
	{id: 0, event: evPortName, value: 1, name: "vmm.stdout"},
	{id: 1, event: evPortOpen, value: 1},
	{id: 1, event: evPortName, value: 1, name: "vmm.stderr"},
	{id: 2, event: evPortOpen, value: 0},
	{id: 2, event: evPortName, value: 1, name: "vmm.control"},
}

// TestControl_Hostile sends control chains no driver should send: each is
// returned, counted under its reason, answered with nothing, changes no
// port, and the device then shakes hands as if nothing happened.
func TestControl_Hostile(t *testing.T) {
	type counts struct{ malformed, unknown, badPort uint64 }
	m := func(id uint32, event, value uint16) [][]byte {
		return [][]byte{msg{id: id, event: event, value: value}.bytes()}
	}
	tests := []struct {
		name     string
		readable [][]byte
		writable []int
		want     counts
	}{
		{"empty", [][]byte{{}}, nil, counts{malformed: 1}},
		{"7 bytes", [][]byte{make([]byte, 7)}, nil, counts{malformed: 1}},
		{"9 bytes", [][]byte{append(msg{id: badID, event: evDeviceReady, value: 1}.bytes(), 0)}, nil, counts{malformed: 1}},
		{"two messages in one chain", [][]byte{msg{id: 0, event: evPortOpen, value: 1}.bytes(), msg{id: 1, event: evPortOpen, value: 1}.bytes()}, nil, counts{malformed: 1}},
		{"writable buffer", m(0, evPortOpen, 1), []int{8}, counts{malformed: 1}},
		{"PORT_OPEN value 2", m(0, evPortOpen, 2), nil, counts{malformed: 1}},
		{"PORT_READY value 0xffff", m(0, evPortReady, 0xffff), nil, counts{malformed: 1}},
		{"DEVICE_READY value 2", m(badID, evDeviceReady, 2), nil, counts{malformed: 1}},
		{"PORT_ADD from the driver", m(0, evPortAdd, 1), nil, counts{unknown: 1}},
		{"PORT_REMOVE from the driver", m(0, evPortRemove, 1), nil, counts{unknown: 1}},
		{"CONSOLE_PORT from the driver", m(0, evConsolePort, 1), nil, counts{unknown: 1}},
		{"RESIZE from the driver", m(0, evResize, 1), nil, counts{unknown: 1}},
		{"PORT_NAME from the driver", m(0, evPortName, 1), nil, counts{unknown: 1}},
		{"event 8", m(0, 8, 1), nil, counts{unknown: 1}},
		{"event 0xffff", m(0, 0xffff, 1), nil, counts{unknown: 1}},
		{"PORT_READY past the last port", m(3, evPortReady, 1), nil, counts{badPort: 1}},
		{"PORT_OPEN for BAD_ID", m(badID, evPortOpen, 1), nil, counts{badPort: 1}},
		{"PORT_OPEN for port 2^31", m(1<<31, evPortOpen, 1), nil, counts{badPort: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGuest(t, threePorts())
			g.activate(featMultiport)
			g.postControlBuffers(8)
			g.sendRaw(tt.readable, tt.writable)
			s := g.dev.Stats()
			if got := (counts{s.ControlMalformed, s.ControlUnknown, s.ControlBadPort}); got != tt.want {
				t.Errorf("counted %+v, want %+v", got, tt.want)
			}
			if msgs := g.recv(); len(msgs) != 0 {
				t.Errorf("answered with %v", msgs)
			}
			for i := range 3 {
				if g.dev.GuestOpen(i) {
					t.Errorf("port %d open", i)
				}
			}
			if got := g.handshake(); !slices.Equal(got, wantHandshake) {
				t.Errorf("handshake afterwards:\n got %v\nwant %v", got, wantHandshake)
			}
		})
	}
}

// TestControl_SplitMessage: a message spread over descriptors is one
// message all the same.
func TestControl_SplitMessage(t *testing.T) {
	g := newGuest(t, threePorts())
	g.activate(featMultiport)
	g.postControlBuffers(8)
	b := msg{id: badID, event: evDeviceReady, value: 1}.bytes()
	g.sendRaw([][]byte{b[:3], b[3:5], b[5:]}, nil)
	if got := g.recv(); !slices.Equal(got, wantHandshake[:3]) {
		t.Errorf("got %v", got)
	}
}

// TestControl_Flood: PORT_READY over and over with no control buffers
// posted: the messages waiting are bounded, the rest dropped and counted.
func TestControl_Flood(t *testing.T) {
	g := newGuest(t, threePorts())
	g.activate(featMultiport)
	const sent = 1000
	for range sent {
		g.send(msg{id: 0, event: evPortReady, value: 1}) // two messages each
	}
	g.postControlBuffers(8)
	got := g.recv()
	dropped := g.dev.Stats().ControlDropped
	if len(got) > 64 || uint64(len(got))+dropped != 2*sent {
		t.Errorf("%d messages delivered, %d dropped, of %d", len(got), dropped, 2*sent)
	}
	// Port 0, set up already, is not announced again.
	if got := g.handshake(); !slices.Equal(got, slices.Concat(wantHandshake[1:3], wantHandshake[5:])) {
		t.Errorf("handshake after the flood: %v", got)
	}
}

// TestControl_UnusableReceiveBuffers: a control receive buffer that is
// device-readable, or too small for the message, comes back empty and the
// message goes into the next.
func TestControl_UnusableReceiveBuffers(t *testing.T) {
	g := newGuest(t, []console.Port{{Name: "vmm.stdout", Out: &sink{}}})
	g.activate(featMultiport)
	q := g.drv[ctlRX]
	heads := []uint16{
		q.AddChain([][]byte{make([]byte, 8)}, []int{64}), // readable part
		q.AddChain(nil, []int{8}),                        // PORT_ADD fits
		q.AddChain(nil, []int{8}),                        // PORT_OPEN fits
		q.AddChain(nil, []int{17}),                       // PORT_NAME needs 18
		q.AddChain(nil, []int{18}),
	}
	g.notify(ctlRX)
	g.send(msg{id: badID, event: evDeviceReady, value: 1})
	g.send(msg{id: 0, event: evPortReady, value: 1})
	want := []virtiotest.UsedElem{{ID: uint32(heads[0])}, {ID: uint32(heads[1]), Len: 8}, {ID: uint32(heads[2]), Len: 8},
		{ID: uint32(heads[3])}, {ID: uint32(heads[4]), Len: 18}}
	if u := q.Used(); !slices.Equal(u, want) {
		t.Fatalf("used %+v, want %+v", u, want)
	}
	if got := parseMsg(t, q.Written(heads[4])); got != (msg{id: 0, event: evPortName, value: 1, name: "vmm.stdout"}) {
		t.Errorf("name message %v", got)
	}
	if n := g.dev.Stats().BadChains; n != 2 {
		t.Errorf("BadChains %d, want 2", n)
	}
}

// TestControl_BrokenRings: a control ring the driver broke gives
// NEEDS_RESET from Notify, and Reset clears it.
func TestControl_BrokenRings(t *testing.T) {
	g := newGuest(t, threePorts())
	g.activate(featMultiport)
	g.drv[ctlTX].AddLoop(3)
	if err := g.dev.Notify(ctlTX); !errors.Is(err, virtio.ErrNeedsReset) {
		t.Errorf("looping control transmit chain: %v", err)
	}

	g.reset()
	g.layout()
	g.activate(featMultiport)
	g.send(msg{id: badID, event: evDeviceReady, value: 1}) // answers wait for buffers
	g.drv[ctlRX].AddWritableBeforeReadable()
	if err := g.dev.Notify(ctlRX); !errors.Is(err, virtio.ErrNeedsReset) {
		t.Errorf("broken control receive chain: %v", err)
	}
	if err := g.dev.Notify(ctlTX); !errors.Is(err, virtio.ErrNeedsReset) {
		t.Errorf("control transmitq on a broken receiveq: %v", err)
	}

	g.reset()
	g.layout()
	g.activate(featMultiport)
	if got := g.handshake(); !slices.Equal(got, wantHandshake) {
		t.Errorf("handshake after Reset: %v", got)
	}
}
