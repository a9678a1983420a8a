package net_test

import (
	"bytes"
	stdnet "net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmm-dev/vmm/virtio/net"
)

// recvLink reads the next datagram at sw as a switch that takes links
// does, and returns it with the one descriptor it carried, which the
// test then owns, and its sender.
func (s *fakeSwitch) recvLink(t *testing.T) ([]byte, int, *stdnet.UnixAddr) {
	t.Helper()
	buf, oob := make([]byte, 65536), make([]byte, unix.CmsgSpace(4*4))
	s.conn.SetReadDeadline(time.Now().Add(testTimeout))
	n, oobn, _, from, err := s.conn.ReadMsgUnix(buf, oob)
	if err != nil {
		t.Fatalf("switch read: %v", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("control data %d messages, %v; want one", len(msgs), err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		t.Fatalf("rights %v, %v; want one descriptor", fds, err)
	}
	t.Cleanup(func() { unix.Close(fds[0]) })
	return buf[:n], fds[0], from
}

// checkLink fails unless fd is a connected unix datagram socket.
func checkLink(t *testing.T, fd int) {
	t.Helper()
	typ, err1 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	domain, err2 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	_, err3 := unix.Getpeername(fd)
	if typ != unix.SOCK_DGRAM || domain != unix.AF_UNIX || err1 != nil || err2 != nil || err3 != nil {
		t.Fatalf("link: type %d, domain %d, peer %v; want a connected unix datagram socket", typ, domain, err3)
	}
}

// TestSocket_Link: the registration hands the switch one end of a socket
// pair; frames the switch sends on it come out of ReadPacket, as frames
// sent to the socket itself still do (a switch that takes no link).
// Close closes the Socket's end, so the switch's next send there fails.
func TestSocket_Link(t *testing.T) {
	sw := newFakeSwitch(t, filepath.Join(t.TempDir(), "sw"))
	s, err := net.OpenSocket(sw.path, testMAC[:])
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	reg, link, addr := sw.recvLink(t)
	if !bytes.Equal(reg, testMAC[:]) {
		t.Fatalf("registration % x, want the MAC", reg)
	}
	checkLink(t, link)

	buf := make([]byte, net.MaxPacketSize)
	s.SetReadDeadline(time.Now().Add(testTimeout))
	for i, send := range []func([]byte) error{
		func(f []byte) error { _, err := unix.Write(link, f); return err },
		func(f []byte) error { _, err := sw.conn.WriteToUnix(f, addr); return err },
	} {
		f := frame(100, byte(i))
		if err := send(f); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if n, err := s.ReadPacket(buf); err != nil || !bytes.Equal(buf[:n], packet(net.Header{}, f)) {
			t.Fatalf("frame %d: ReadPacket = %d bytes, %v; want it behind a zero header", i, n, err)
		}
	}

	s.Close()
	if _, err := unix.Write(link, frame(60, 0)); err != unix.ECONNREFUSED {
		t.Errorf("send on the link after Close = %v, want ECONNREFUSED", err)
	}
}

// TestSocket_SwitchRestarted_NewLink: a switch started again at the same
// path gets a new link with the registration, and the old one is closed.
func TestSocket_SwitchRestarted_NewLink(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sw")
	sw := newFakeSwitch(t, path)
	s, err := net.OpenSocket(path, testMAC[:])
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, old, _ := sw.recvLink(t)
	sw.conn.Close()
	os.Remove(path)
	sw = newFakeSwitch(t, path)
	if err := s.WritePacket(packet(net.Header{}, frame(80, 1))); err != nil {
		t.Fatalf("write after the restart: %v", err)
	}
	reg, link, _ := sw.recvLink(t)
	if !bytes.Equal(reg, testMAC[:]) {
		t.Fatalf("first datagram % x, want the registration", reg)
	}
	checkLink(t, link)
	if _, err := unix.Write(old, frame(60, 0)); err != unix.ECONNREFUSED {
		t.Errorf("send on the old link = %v, want ECONNREFUSED", err)
	}
	f := frame(90, 2)
	if _, err := unix.Write(link, f); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, net.MaxPacketSize)
	s.SetReadDeadline(time.Now().Add(testTimeout))
	if n, err := s.ReadPacket(buf); err != nil || !bytes.Equal(buf[:n], packet(net.Header{}, f)) {
		t.Fatalf("ReadPacket = %d bytes, %v; want the frame sent on the new link", n, err)
	}
}
