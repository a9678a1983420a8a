package netswitch_test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	vnet "github.com/vmm-dev/vmm/virtio/net"
	"github.com/vmm-dev/vmm/vmm/netswitch"
)

// stalledStation joins s as a client that connects to the switch and
// hands it no link (a vmm before links, or a foreign client), registers
// mac and never reads: what the socket of a stopped vmm process is to
// the switch.
func stalledStation(t *testing.T, s *netswitch.Switch, mac net.HardwareAddr) {
	t.Helper()
	fd := connectedSocket(t, s)
	if _, err := unix.Write(fd, mac); err != nil {
		t.Fatal(err)
	}
}

// stalledLink joins s as vmm's socket backend does, handing the switch a
// link with its registration, and never reads the link.
func stalledLink(t *testing.T, s *netswitch.Switch, mac net.HardwareAddr) {
	t.Helper()
	fd := connectedSocket(t, s)
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(pair[0]) })
	err = unix.Sendmsg(fd, mac, unix.UnixRights(pair[1]), nil, 0)
	unix.Close(pair[1])
	if err != nil {
		t.Fatal(err)
	}
}

// connectedSocket is an autobound unix datagram socket connected to s,
// as vmm's socket backend opens one; it sends with a timeout.
func connectedSocket(t *testing.T, s *netswitch.Switch) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	tv := unix.NsecToTimeval(int64(timeout))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: s.Addr()}); err != nil {
		t.Fatal(err)
	}
	return fd
}

// fillPort sends 1514-byte frames from b to mac until the switch loses
// one for want of room, and returns how many it sent.
func fillPort(t *testing.T, s *netswitch.Switch, b *client, mac net.HardwareAddr) int {
	t.Helper()
	f := ethFrame(mac, macB, strings.Repeat("x", 1500))
	for sent := 0; ; {
		if p, ok := s.Stats().Port(mac); ok && p.Lost > 0 && int(p.Delivered+p.Lost) == sent {
			return sent
		}
		if sent > 100000 {
			t.Fatalf("the switch never ran out of room for %v: %+v", mac, s.Stats())
		}
		b.send(f)
		sent++
	}
}

// TestSwitch_StalledPort_StarvesNoOther: port A stops reading and its
// queue fills up. The switch loses (and counts) A's excess, and B's
// unicast and broadcast frames to C all arrive. Before each port had a
// socket of its own, A's unread frames used up the switch's one send
// buffer, and C lost every frame. A is a client connected to the switch
// with no link (which shares the switch's socket with its like, but not
// with B and C), or one with a link, as vmm's backend has.
func TestSwitch_StalledPort_StarvesNoOther(t *testing.T) {
	for _, tt := range []struct {
		name  string
		join  func(*testing.T, *netswitch.Switch, net.HardwareAddr)
		route netswitch.Route
	}{
		{"connected", stalledStation, netswitch.RouteShared},
		{"link", stalledLink, netswitch.RouteLink},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newSwitch(t)
			tt.join(t, s, macA)
			b, c := newClient(t, s, "b"), newClient(t, s, "c")
			b.register(macB)
			c.register(macC)
			checkStall(t, s, b, c)
			if p := portOf(t, s.Stats(), macA); p.Route != tt.route {
				t.Errorf("port of a: route %v, want %v", p.Route, tt.route)
			}
		})
	}
}

// checkStall fills port A, then has b send c unicast and broadcast
// frames, and checks c gets every one while A loses its share.
func checkStall(t *testing.T, s *netswitch.Switch, b, c *client) {
	t.Helper()
	const rounds = 100
	filled := fillPort(t, s, b, macA)
	for i := range rounds {
		u := ethFrame(macC, macB, fmt.Sprintf("unicast %d", i))
		bc := ethFrame(broadcast, macB, fmt.Sprintf("broadcast %d", i))
		b.send(u)
		b.send(bc)
		for _, want := range [][]byte{u, bc} {
			got, ok := c.tryRecv(timeout)
			if !ok {
				t.Fatalf("round %d: c got nothing; switch %+v", i, s.Stats())
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("round %d: c got %q, want %q", i, got, want)
			}
		}
	}

	st := s.Stats()
	pa, pb, pc := portOf(t, st, macA), portOf(t, st, macB), portOf(t, st, macC)
	if pc.Delivered != 2*rounds || pc.Lost != 0 || pc.Route != netswitch.RouteOwn {
		t.Errorf("port of c: %+v; want %d delivered, none lost, on its own socket", pc, 2*rounds)
	}
	if pa.Lost < rounds || pa.Delivered+pa.Lost != uint64(filled+rounds) {
		t.Errorf("port of a: %+v; want its %d frames delivered or lost, at least the %d broadcasts lost", pa, filled+rounds, rounds)
	}
	if pb.Forwarded != uint64(filled+rounds) || pb.Flooded != rounds {
		t.Errorf("port of b: %+v; want %d forwarded and %d flooded", pb, filled+rounds, rounds)
	}
	t.Logf("a: %d delivered, %d lost; c: %d delivered, %d lost", pa.Delivered, pa.Lost, pc.Delivered, pc.Lost)
}

// tryRecv reads a frame, waiting up to d.
func (c *client) tryRecv(d time.Duration) ([]byte, bool) {
	buf := make([]byte, netswitch.MaxFrame+1)
	c.conn.SetReadDeadline(time.Now().Add(d))
	n, _, err := c.conn.ReadFromUnix(buf)
	if err != nil {
		return nil, false
	}
	return buf[:n], true
}

// TestSwitch_StalledVMM: vmm socket backends B and C, each with its
// link, exchange frames while A, a port whose link nobody reads (a
// stopped vmm), has its share lost and counted.
func TestSwitch_StalledVMM(t *testing.T) {
	const rounds = 100
	s := newSwitch(t)
	stalledLink(t, s, macA)
	b, c := openSocket(t, s, macB), openSocket(t, s, macC)
	full := packet(ethFrame(macA, macB, strings.Repeat("x", 1500)))
	for sent := 0; ; sent++ {
		if p, ok := s.Stats().Port(macA); ok && p.Lost > 0 && int(p.Delivered+p.Lost) == sent {
			break
		}
		if sent > 100000 {
			t.Fatalf("the switch never ran out of room for a: %+v", s.Stats())
		}
		if err := b.WritePacket(full); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, vnet.MaxPacketSize)
	c.SetReadDeadline(time.Now().Add(timeout))
	for i := range rounds {
		for _, f := range [][]byte{
			ethFrame(macC, macB, fmt.Sprintf("unicast %d", i)),
			ethFrame(broadcast, macB, fmt.Sprintf("broadcast %d", i)),
		} {
			if err := b.WritePacket(packet(f)); err != nil {
				t.Fatal(err)
			}
			n, err := c.ReadPacket(buf)
			if err != nil || !bytes.Equal(buf[:n], packet(f)) {
				t.Fatalf("round %d: c read %d bytes, %v; want %q; switch %+v", i, n, err, f, s.Stats())
			}
		}
	}
	st := s.Stats()
	for _, mac := range []net.HardwareAddr{macA, macB, macC} {
		if p := portOf(t, st, mac); p.Route != netswitch.RouteLink {
			t.Errorf("port of %v: route %v, want link", mac, p.Route)
		}
	}
	if pa, pc := portOf(t, st, macA), portOf(t, st, macC); pc.Delivered != 2*rounds || pc.Lost != 0 || pa.Lost < rounds {
		t.Errorf("port of a %+v, of c %+v; want c's %d frames delivered and a's broadcasts lost", pa, pc, 2*rounds)
	}
}

// openSocket opens a vmm socket backend on s.
func openSocket(t *testing.T, s *netswitch.Switch, mac net.HardwareAddr) *vnet.Socket {
	t.Helper()
	sk, err := vnet.OpenSocket(s.Addr(), mac)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sk.Close() })
	return sk
}

// packet puts a frame behind a zero virtio-net header.
func packet(f []byte) []byte { return append(make([]byte, vnet.HeaderSize), f...) }

// TestSwitch_Links_Refused: a descriptor that is no connected unix
// datagram socket, more than one, or one that comes with no
// registration, is closed and leaves the port's route as it was.
func TestSwitch_Links_Refused(t *testing.T) {
	s := newSwitch(t)
	b := newClient(t, s, "b")
	b.register(macB)
	fd := connectedSocket(t, s)
	hello := ethFrame(macB, macA, "hello")
	if _, err := unix.Write(fd, hello); err != nil {
		t.Fatal(err)
	}
	b.expect(hello) // a is a port, with a socket of its own
	before := openFDs(t)

	var pipe [2]int
	if err := unix.Pipe2(pipe[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	unconnected, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		b   []byte
		fds []int
	}{
		{macA, []int{pipe[0]}},
		{macA, []int{unconnected}},
		{macA, []int{pair[1], pair[1]}},
		{ethFrame(macB, macA, "with a link"), []int{pair[1]}},
	} {
		if err := unix.Sendmsg(fd, tt.b, unix.UnixRights(tt.fds...), nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, fd := range []int{pipe[0], pipe[1], unconnected, pair[0], pair[1]} {
		unix.Close(fd)
	}
	marker := ethFrame(macB, macA, "marker")
	if _, err := unix.Write(fd, marker); err != nil {
		t.Fatal(err)
	}
	b.expect(marker, ethFrame(macB, macA, "with a link"))
	if p := portOf(t, s.Stats(), macA); p.Route == netswitch.RouteLink {
		t.Errorf("port of a: %+v, took a link", p)
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d descriptors open, %d before: the switch kept some", after, before)
	}
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
