package netswitch_test

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vnet "github.com/vmm-dev/vmm/virtio/net"
	"github.com/vmm-dev/vmm/vmm/netswitch"
)

// timeout bounds every wait; tests never assert on timing.
const timeout = 10 * time.Second

var (
	macA      = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	macB      = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0b}
	macC      = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0c}
	macNobody = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0f}
	broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	multicast = net.HardwareAddr{0x01, 0x00, 0x5e, 0, 0, 0x01}
)

// client is a plain unixgram socket bound to a path, talking to a switch.
type client struct {
	t    *testing.T
	path string
	sw   *net.UnixAddr
	conn *net.UnixConn
}

func newSwitch(t *testing.T) *netswitch.Switch {
	t.Helper()
	s, err := netswitch.New(filepath.Join(t.TempDir(), "sw"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newClient(t *testing.T, s *netswitch.Switch, name string) *client {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &client{t: t, path: path, sw: &net.UnixAddr{Name: s.Addr(), Net: "unixgram"}, conn: conn}
}

func (c *client) send(b []byte) {
	c.t.Helper()
	if _, err := c.conn.WriteToUnix(b, c.sw); err != nil {
		c.t.Fatalf("client %s: send: %v", c.path, err)
	}
}

// register sends the 6-byte registration.
func (c *client) register(mac net.HardwareAddr) { c.send(mac) }

func (c *client) recv() []byte {
	c.t.Helper()
	buf := make([]byte, netswitch.MaxFrame+1)
	c.conn.SetReadDeadline(time.Now().Add(timeout))
	n, _, err := c.conn.ReadFromUnix(buf)
	if err != nil {
		c.t.Fatalf("client %s: %v", c.path, err)
	}
	return buf[:n]
}

// expect reads frames until the marker and fails unless exactly want came
// before it. The switch handles datagrams in order and sends each port its
// frames in order, so nothing sent before the marker can come after it.
func (c *client) expect(marker []byte, want ...[]byte) {
	c.t.Helper()
	var got [][]byte
	for {
		f := c.recv()
		if bytes.Equal(f, marker) {
			break
		}
		got = append(got, f)
	}
	if len(got) != len(want) {
		c.t.Fatalf("client %s got %d frames before the marker, want %d: % x", c.path, len(got), len(want), got)
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			c.t.Errorf("client %s frame %d:\n% x\nwant\n% x", c.path, i, got[i], want[i])
		}
	}
}

// ethFrame is an Ethernet frame with EtherType 0x88b5 (local
// experimental) and payload.
func ethFrame(dst, src net.HardwareAddr, payload string) []byte {
	f := append(append(bytes.Clone(dst), src...), 0x88, 0xb5)
	return append(f, payload...)
}

func portOf(t *testing.T, st netswitch.Stats, mac net.HardwareAddr) netswitch.PortStats {
	t.Helper()
	p, ok := st.Port(mac)
	if !ok {
		t.Fatalf("no port owns %v: %+v", mac, st)
	}
	return p
}

// threePorts starts a switch with clients a, b and c registered.
func threePorts(t *testing.T) (*netswitch.Switch, *client, *client, *client) {
	s := newSwitch(t)
	a, b, c := newClient(t, s, "a"), newClient(t, s, "b"), newClient(t, s, "c")
	a.register(macA)
	b.register(macB)
	c.register(macC)
	return s, a, b, c
}

// TestSwitch_UnicastToOwnerOnly: after registration a unicast frame goes
// to the port that registered its destination and nowhere else, the
// sender included.
func TestSwitch_UnicastToOwnerOnly(t *testing.T) {
	s, a, b, c := threePorts(t)
	f := ethFrame(macB, macA, "to b")
	a.send(f)
	marker := ethFrame(broadcast, macC, "marker")
	c.send(marker)
	b.expect(marker, f)
	a.expect(marker)
	markerB := ethFrame(broadcast, macB, "marker")
	b.send(markerB)
	c.expect(markerB)

	st := s.Stats()
	if len(st.Ports) != 3 {
		t.Fatalf("%d ports, want 3: %+v", len(st.Ports), st)
	}
	for _, tt := range []struct {
		mac                                net.HardwareAddr
		forwarded, flooded, dropped, deliv uint64
	}{
		{macA, 1, 0, 0, 2},
		{macB, 0, 1, 0, 2},
		{macC, 0, 1, 0, 1},
	} {
		p := portOf(t, st, tt.mac)
		if p.Forwarded != tt.forwarded || p.Flooded != tt.flooded || p.Dropped != tt.dropped || p.Delivered != tt.deliv || p.Lost != 0 {
			t.Errorf("port of %v: %+v; want forwarded %d, flooded %d, dropped %d, delivered %d",
				tt.mac, p, tt.forwarded, tt.flooded, tt.dropped, tt.deliv)
		}
	}
}

// TestSwitch_Floods: broadcast, multicast and unknown unicast go to every
// port but the sender's.
func TestSwitch_Floods(t *testing.T) {
	s, a, b, c := threePorts(t)
	frames := [][]byte{
		ethFrame(broadcast, macA, "broadcast"),
		ethFrame(multicast, macA, "multicast"),
		ethFrame(macNobody, macA, "unknown"),
	}
	for _, f := range frames {
		a.send(f)
	}
	marker := ethFrame(broadcast, macC, "marker")
	c.send(marker)
	b.expect(marker, frames...)
	a.expect(marker)
	markerB := ethFrame(broadcast, macB, "marker")
	b.send(markerB)
	c.expect(markerB, frames...)
	if p := portOf(t, s.Stats(), macA); p.Flooded != 3 || p.Forwarded != 0 {
		t.Errorf("port of a: %+v, want 3 flooded", p)
	}
}

// TestSwitch_LearnsSources: a port that never registered is learned from
// the source of its first frame; until then frames to it are flooded. A
// MAC that appears on another port moves there.
func TestSwitch_LearnsSources(t *testing.T) {
	s := newSwitch(t)
	a, b, c := newClient(t, s, "a"), newClient(t, s, "b"), newClient(t, s, "c")
	a.register(macA)
	c.register(macC)
	toB := ethFrame(macB, macA, "where is b")
	a.send(toB)                          // flooded: to c only, as b is no port yet
	b.send(ethFrame(macA, macB, "here")) // b is a port, and macB learned
	a.send(toB)                          // to b only
	marker := ethFrame(broadcast, macA, "marker")
	a.send(marker)
	b.expect(marker, toB)
	c.expect(marker, toB)

	// macB moves to c's port.
	c.send(ethFrame(macA, macB, "b moved"))
	a.send(toB)
	a.send(marker)
	c.expect(marker, toB)
	b.expect(marker)
	if p := portOf(t, s.Stats(), macB); !strings.HasSuffix(p.Addr, "/c") {
		t.Errorf("macB on %s, want c's port", p.Addr)
	}
}

// TestSwitch_Drops: runts, oversize datagrams, bad registrations, group
// sources and frames to the sender's own port go nowhere and are counted.
func TestSwitch_Drops(t *testing.T) {
	s, a, b, _ := threePorts(t)
	bad := [][]byte{
		{1, 2, 3, 4, 5},                     // runt
		make([]byte, 13),                    // runt
		make([]byte, 7),                     // runt, not a registration
		make([]byte, netswitch.MaxFrame+1),  // oversize
		multicast,                           // registration of a group address
		make([]byte, 6),                     // registration of the zero address
		ethFrame(macB, multicast, "source"), // group source
		ethFrame(macA, macA, "to myself"),   // destination on the sender's port
	}
	for _, f := range bad {
		a.send(f)
	}
	marker := ethFrame(broadcast, macA, "marker")
	a.send(marker)
	b.expect(marker)
	st := s.Stats()
	if p := portOf(t, st, macA); p.Dropped != uint64(len(bad)) || p.Flooded != 1 {
		t.Errorf("port of a: %+v, want %d dropped and the marker flooded", p, len(bad))
	}
	if p, _ := st.Port(multicast); p.Addr != "" {
		t.Errorf("a group address was learned: %+v", p)
	}

	// A stranger's runt makes no port.
	d := newClient(t, s, "d")
	d.send([]byte{1, 2, 3})
	d.register(macNobody)
	b.send(ethFrame(macNobody, macB, "to d"))
	if got := d.recv(); !bytes.Equal(got, ethFrame(macNobody, macB, "to d")) {
		t.Errorf("d got % x", got)
	}
	if st := s.Stats(); st.Dropped != 1 || len(st.Ports) != 4 {
		t.Errorf("stats %+v, want 1 stranger's datagram dropped and 4 ports", st)
	}
}

// TestSwitch_ForgetsGonePorts: a port whose socket went away is
// forgotten at the next frame for it, whether its file remains or not,
// and the others go on.
func TestSwitch_ForgetsGonePorts(t *testing.T) {
	s, a, b, c := threePorts(t)
	d := newClient(t, s, "d")
	d.register(macNobody)
	b.conn.Close() // the file stays: ECONNREFUSED
	d.conn.Close() // the file goes: ENOENT
	if err := os.Remove(d.path); err != nil {
		t.Fatal(err)
	}
	f := ethFrame(broadcast, macA, "anyone?")
	a.send(f)
	marker := ethFrame(macC, macA, "marker")
	a.send(marker)
	c.expect(marker, f)
	st := s.Stats()
	if len(st.Ports) != 2 || st.Forgotten != 2 {
		t.Fatalf("stats %+v, want a and c left and 2 forgotten", st)
	}
	if _, ok := st.Port(macB); ok {
		t.Error("macB still has a port")
	}
	// Frames to the forgotten MAC are unknown unicast again: flooded.
	a.send(ethFrame(macB, macA, "b?"))
	c.send(ethFrame(broadcast, macC, "marker"))
	a.expect(ethFrame(broadcast, macC, "marker"))
	if p := portOf(t, s.Stats(), macA); p.Flooded != 2 || p.Forwarded != 1 {
		t.Errorf("port of a: %+v, want 2 flooded, 1 forwarded", p)
	}
}

// TestSwitch_Sockets: two virtio-net socket backends, as two vmm
// processes would open them, exchange a frame through the switch, which
// sends it on the receiver's link.
func TestSwitch_Sockets(t *testing.T) {
	s := newSwitch(t)
	sa, err := vnet.OpenSocket(s.Addr(), macA)
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	sb, err := vnet.OpenSocket(s.Addr(), macB)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	f := ethFrame(macB, macA, "hello b")
	if err := sa.WritePacket(append(make([]byte, vnet.HeaderSize), f...)); err != nil {
		t.Fatal(err)
	}
	sb.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, vnet.MaxPacketSize)
	n, err := sb.ReadPacket(buf)
	if err != nil || !bytes.Equal(buf[:n], append(make([]byte, vnet.HeaderSize), f...)) {
		t.Fatalf("b read %d bytes, %v; want the frame behind a zero header", n, err)
	}
	st := s.Stats()
	if pa, pb := portOf(t, st, macA), portOf(t, st, macB); pa.Forwarded != 1 || pb.Delivered != 1 || !strings.HasPrefix(pa.Addr, "@") ||
		pa.Route != netswitch.RouteLink || pb.Route != netswitch.RouteLink {
		t.Errorf("ports %+v and %+v, want one frame forwarded from an abstract address, both on links", pa, pb)
	}

	// Closed, b's link refuses the next frame, and its port is forgotten.
	sb.Close()
	if err := sa.WritePacket(append(make([]byte, vnet.HeaderSize), ethFrame(macB, macA, "gone?")...)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(timeout); s.Stats().Forgotten != 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("b's port not forgotten: %+v", s.Stats())
		}
	}
}

// TestNew_Paths: a stale socket file is replaced; a live switch, a live
// stream socket and a plain file are left alone; Close removes the
// socket file, and only its own.
func TestNew_Paths(t *testing.T) {
	dir := t.TempDir()

	stale := filepath.Join(dir, "stale")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: stale, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	l.Close() // the file stays
	s, err := netswitch.New(stale)
	if err != nil {
		t.Fatalf("New over a stale socket: %v", err)
	}
	if _, err := netswitch.New(stale); !errors.Is(err, netswitch.ErrInUse) {
		t.Errorf("second New at a live switch = %v, want ErrInUse", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := os.Lstat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after Close: %v", err)
	}

	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := netswitch.New(file); !errors.Is(err, netswitch.ErrNotSocket) {
		t.Errorf("New over a file = %v, want ErrNotSocket", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "keep" {
		t.Error("New clobbered a file")
	}

	stream := filepath.Join(dir, "stream")
	ls, err := net.Listen("unix", stream)
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	if _, err := netswitch.New(stream); !errors.Is(err, netswitch.ErrInUse) {
		t.Errorf("New over a live stream socket = %v, want ErrInUse", err)
	}

	// A successor's socket at the same path survives the first's Close.
	path := filepath.Join(dir, "moved")
	first, err := netswitch.New(path)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(path)
	second, err := netswitch.New(path)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	first.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("the second switch's socket after the first's Close: %v", err)
	}
}

// TestClose_StopsSwitching: after Close the switch reads nothing more and
// clients' sends fail.
func TestClose_StopsSwitching(t *testing.T) {
	s, a, _, _ := threePorts(t)
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(timeout):
		t.Fatal("Close did not return")
	}
	if _, err := a.conn.WriteToUnix(ethFrame(broadcast, macA, "x"), a.sw); err == nil {
		t.Error("send to a closed switch succeeded")
	}
}

// TestSwitch_Concurrent: Stats from other goroutines while frames flow
// (run with -race).
func TestSwitch_Concurrent(t *testing.T) {
	s, a, b, c := threePorts(t)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				s.Stats()
			}
		}
	}()
	f := ethFrame(macB, macA, "x")
	for range 5 {
		a.send(f)
	}
	marker := ethFrame(broadcast, macC, "marker")
	c.send(marker)
	b.expect(marker, f, f, f, f, f)
}
