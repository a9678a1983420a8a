package net_test

import (
	"bytes"
	"errors"
	"io/fs"
	stdnet "net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmm-dev/vmm/virtio/net"
	"github.com/vmm-dev/vmm/virtio/virtiotest"
)

// fakeSwitch is the far end of a Socket: a plain unixgram socket bound to
// a path, which records who sent what and can answer.
type fakeSwitch struct {
	path string
	conn *stdnet.UnixConn
}

func newFakeSwitch(t *testing.T, path string) *fakeSwitch {
	t.Helper()
	conn, err := stdnet.ListenUnixgram("unixgram", &stdnet.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &fakeSwitch{path: path, conn: conn}
}

// recv returns the next datagram and its sender, failing after testTimeout.
func (s *fakeSwitch) recv(t *testing.T) ([]byte, *stdnet.UnixAddr) {
	t.Helper()
	buf := make([]byte, 65536)
	s.conn.SetReadDeadline(time.Now().Add(testTimeout))
	n, from, err := s.conn.ReadFromUnix(buf)
	if err != nil {
		t.Fatalf("switch read: %v", err)
	}
	return buf[:n], from
}

// quiet fails the test if a datagram arrives within a short while.
func (s *fakeSwitch) quiet(t *testing.T) {
	t.Helper()
	buf := make([]byte, 65536)
	s.conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, _, err := s.conn.ReadFromUnix(buf); err == nil {
		t.Errorf("switch got an unexpected %d-byte datagram: % x", n, buf[:n])
	}
}

func (s *fakeSwitch) send(t *testing.T, to *stdnet.UnixAddr, b []byte) {
	t.Helper()
	if _, err := s.conn.WriteToUnix(b, to); err != nil {
		t.Fatalf("switch send: %v", err)
	}
}

// openRegistered opens a Socket to sw and returns it with its address as
// the switch sees it, having checked the registration datagram.
func openRegistered(t *testing.T, sw *fakeSwitch) (*net.Socket, *stdnet.UnixAddr) {
	t.Helper()
	s, err := net.OpenSocket(sw.path, testMAC[:])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	reg, from := sw.recv(t)
	if !bytes.Equal(reg, testMAC[:]) {
		t.Fatalf("registration % x, want the MAC % x", reg, testMAC[:])
	}
	if from == nil || !strings.HasPrefix(from.Name, "@") || len(from.Name) < 2 {
		t.Fatalf("registration from %v, want an autobound abstract address", from)
	}
	return s, from
}

// TestSocket_Registers: opening sends the MAC alone, from an address the
// switch can answer.
func TestSocket_Registers(t *testing.T) {
	sw := newFakeSwitch(t, filepath.Join(t.TempDir(), "sw"))
	openRegistered(t, sw)
	sw.quiet(t)
}

// TestSocket_WritePacket: the frame goes out without its header.
func TestSocket_WritePacket(t *testing.T) {
	sw := newFakeSwitch(t, filepath.Join(t.TempDir(), "sw"))
	s, _ := openRegistered(t, sw)
	for _, n := range []int{14, 60, net.MaxSocketFrame} {
		f := frame(n, byte(n))
		if err := s.WritePacket(packet(net.Header{}, f)); err != nil {
			t.Fatalf("WritePacket(%d-byte frame): %v", n, err)
		}
		if got, _ := sw.recv(t); !bytes.Equal(got, f) {
			t.Errorf("switch got %d bytes, want the %d-byte frame", len(got), n)
		}
	}
}

// TestSocket_WritePacket_Refuses: a header asking for an offload, or a
// frame no plain link carries, is refused and nothing is sent.
func TestSocket_WritePacket_Refuses(t *testing.T) {
	sw := newFakeSwitch(t, filepath.Join(t.TempDir(), "sw"))
	s, _ := openRegistered(t, sw)
	tests := []struct {
		name string
		pkt  []byte
		want error
	}{
		{"partial checksum", packet(net.Header{Flags: net.HdrFNeedsCsum, CsumStart: 34, CsumOffset: 6}, frame(100, 0)), net.ErrOffloadPacket},
		{"TSO", packet(net.Header{GSOType: net.GSOTCPv4, GSOSize: 1448, HdrLen: 54}, frame(3000, 0)), net.ErrOffloadPacket},
		{"too long", packet(net.Header{}, frame(net.MaxSocketFrame+1, 0)), net.ErrFrameSize},
		{"runt", packet(net.Header{}, frame(14, 0))[:net.HeaderSize+13], net.ErrFrameSize},
		{"no header", make([]byte, net.HeaderSize-1), net.ErrShortHeader},
	}
	for _, tt := range tests {
		if err := s.WritePacket(tt.pkt); !errors.Is(err, tt.want) {
			t.Errorf("%s: WritePacket = %v, want %v", tt.name, err, tt.want)
		}
	}
	sw.quiet(t)
}

// TestSocket_ReadPacket: a frame from the switch comes out behind a zero
// header; TryReadPacket says when nothing is queued; an oversize frame is
// dropped and counted.
func TestSocket_ReadPacket(t *testing.T) {
	sw := newFakeSwitch(t, filepath.Join(t.TempDir(), "sw"))
	s, addr := openRegistered(t, sw)
	buf := make([]byte, net.MaxPacketSize+1)
	if _, err := s.TryReadPacket(buf); !errors.Is(err, net.ErrNoPacket) {
		t.Fatalf("TryReadPacket with nothing queued = %v", err)
	}
	f := frame(1514, 3)
	sw.send(t, addr, f)
	for i := range buf {
		buf[i] = 0xee
	}
	n, err := s.ReadPacket(buf)
	if err != nil || !bytes.Equal(buf[:n], packet(net.Header{}, f)) {
		t.Fatalf("ReadPacket = %d, %v; want the frame behind a zero header", n, err)
	}

	sw.send(t, addr, frame(net.MaxSocketFrame+1, 0))
	small := frame(60, 7)
	sw.send(t, addr, small)
	n, err = s.ReadPacket(buf)
	if err != nil || !bytes.Equal(buf[:n], packet(net.Header{}, small)) {
		t.Errorf("after an oversize frame ReadPacket = %d bytes, %v; want the 60-byte frame", n, err)
	}
	if got := s.RXDropped(); got != 1 {
		t.Errorf("RXDropped = %d, want 1", got)
	}
	sw.send(t, addr, small)
	virtiotest.WaitFor(t, "a queued frame", func() bool {
		n, err = s.TryReadPacket(buf)
		return !errors.Is(err, net.ErrNoPacket)
	})
	if err != nil || n != net.HeaderSize+len(small) {
		t.Errorf("TryReadPacket = %d, %v", n, err)
	}
}

// TestSocket_Deadline: the socket is in the runtime poller, so a read
// deadline wakes a waiting ReadPacket, and Close does too.
func TestSocket_Deadline(t *testing.T) {
	sw := newFakeSwitch(t, filepath.Join(t.TempDir(), "sw"))
	s, _ := openRegistered(t, sw)
	checkDeadlineAndClose(t, s)
}

// TestSocket_SwitchGone: with the switch gone, writes fail at once, every
// time, rather than wait.
func TestSocket_SwitchGone(t *testing.T) {
	sw := newFakeSwitch(t, filepath.Join(t.TempDir(), "sw"))
	s, _ := openRegistered(t, sw)
	sw.conn.Close()
	for i := range 3 {
		start := time.Now()
		err := s.WritePacket(packet(net.Header{}, frame(60, 0)))
		if err == nil {
			t.Fatalf("write %d to a closed switch succeeded", i)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("write %d took %v", i, d)
		}
	}
}

// TestSocket_SwitchRestarted: a switch started again at the same path
// gets the port back, registration first, on the next write.
func TestSocket_SwitchRestarted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sw")
	sw := newFakeSwitch(t, path)
	s, addr := openRegistered(t, sw)
	sw.conn.Close()
	os.Remove(path)
	sw = newFakeSwitch(t, path)
	f := frame(80, 1)
	if err := s.WritePacket(packet(net.Header{}, f)); err != nil {
		t.Fatalf("write after the restart: %v", err)
	}
	reg, from := sw.recv(t)
	if !bytes.Equal(reg, testMAC[:]) || from.Name != addr.Name {
		t.Errorf("first datagram % x from %v, want the registration from %v", reg, from, addr)
	}
	if got, _ := sw.recv(t); !bytes.Equal(got, f) {
		t.Errorf("second datagram is %d bytes, want the frame", len(got))
	}
}

// TestSocket_SwitchBusy: a switch that stops reading holds a write up for
// a moment at most, then the write fails; it never wedges.
func TestSocket_SwitchBusy(t *testing.T) {
	sw := newFakeSwitch(t, filepath.Join(t.TempDir(), "sw"))
	s, _ := openRegistered(t, sw)
	var err error
	start := time.Now()
	for i := 0; i < 10000 && err == nil; i++ { // net.unix.max_dgram_qlen is 10 to 512
		err = s.WritePacket(packet(net.Header{}, frame(60, 0)))
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("writes to a switch that does not read: %v, want a timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("writes took %v", d)
	}
}

// TestOpenSocket_Errors: each way of failing gives a *SocketError that
// says what to do, or ErrBadMAC.
func TestOpenSocket_Errors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "stale")
	newFakeSwitch(t, stale).conn.Close() // the file stays, nobody listens
	stream := filepath.Join(dir, "stream")
	l, err := stdnet.Listen("unix", stream)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	live := filepath.Join(dir, "live")
	newFakeSwitch(t, live)

	tests := []struct {
		path string
		mac  stdnet.HardwareAddr
		want error
		says string
	}{
		{filepath.Join(dir, "none"), testMAC[:], net.ErrNoSwitch, "no switch is listening there"},
		{stale, testMAC[:], net.ErrNoSwitch, "start the switch first"},
		{file, testMAC[:], net.ErrNotSwitch, "not a switch's socket"},
		{stream, testMAC[:], net.ErrNotSwitch, "not a switch's socket"},
		{filepath.Join(file, "x"), testMAC[:], net.ErrNoSwitch, "no switch"},
		{"", testMAC[:], net.ErrSocketPath, "invalid path"},
		{"/" + strings.Repeat("a", 107), testMAC[:], net.ErrSocketPath, "invalid path"},
		{live, stdnet.HardwareAddr{1, 0, 0x5e, 0, 0, 1}, net.ErrBadMAC, "unicast"},
		{live, stdnet.HardwareAddr{0, 0, 0, 0, 0, 0}, net.ErrBadMAC, "unicast"},
		{live, stdnet.HardwareAddr{2, 0, 0, 0, 0, 0, 0, 1}, net.ErrBadMAC, "unicast"},
	}
	for _, tt := range tests {
		s, err := net.OpenSocket(tt.path, tt.mac)
		if err == nil {
			s.Close()
		}
		if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("OpenSocket(%q, %v) = %v, want %v saying %q", tt.path, tt.mac, err, tt.want, tt.says)
		}
	}
	_, err = net.OpenSocket(filepath.Join(dir, "none"), testMAC[:])
	var se *net.SocketError
	if !errors.As(err, &se) || se.Path != filepath.Join(dir, "none") || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenSocket on a missing path = %#v, want a SocketError for it that unwraps to ENOENT", err)
	}
}

// TestOpenSocket_PermissionDenied: a socket this user may not write is
// refused with advice. As root, the test drops CAP_DAC_OVERRIDE from the
// opening thread, which then ends with its goroutine.
func TestOpenSocket_PermissionDenied(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sw")
	newFakeSwitch(t, path)
	if err := os.Chmod(path, 0o000); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread goes with the goroutine
		if os.Geteuid() == 0 {
			if err := dropCaps(unix.CAP_DAC_OVERRIDE, unix.CAP_DAC_READ_SEARCH); err != nil {
				errc <- err
				return
			}
		}
		s, err := net.OpenSocket(path, testMAC[:])
		if err == nil {
			s.Close()
		}
		errc <- err
	}()
	err := <-errc
	if !errors.Is(err, net.ErrSocketPermission) || !errors.Is(err, syscall.EACCES) {
		t.Fatalf("OpenSocket on a mode 000 socket = %v, want ErrSocketPermission", err)
	}
	if !strings.Contains(err.Error(), "permission denied: run as the switch's user") {
		t.Errorf("error %q gives no advice", err)
	}
}

// dropCaps removes capabilities from the calling thread's effective set.
func dropCaps(caps ...int) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	for _, c := range caps {
		data[c/32].Effective &^= 1 << (c % 32)
	}
	return unix.Capset(&hdr, &data[0])
}

// TestSocket_Device: over a Socket the device offers no offloads, and
// moves frames both ways; a switch that went away costs dropped,
// counted packets and nothing else.
func TestSocket_Device(t *testing.T) {
	sw := newFakeSwitch(t, filepath.Join(t.TempDir(), "sw"))
	s, addr := openRegistered(t, sw)
	r := newRigOn(t, s, net.FeatureMrgRxbuf)
	const want = net.FeatureMAC | net.FeatureMrgRxbuf | net.FeatureStatus
	if got := r.dev.Features(); got != want {
		t.Errorf("Features over a socket = %#x, want %#x (no offloads)", got, want)
	}
	head := r.rx.AddChain(nil, []int{2048})
	r.activate()

	out := frame(1514, 4)
	r.sendTX(packet(net.Header{}, out), net.HeaderSize)
	r.notify(net.TXQueue)
	if got, _ := sw.recv(t); !bytes.Equal(got, out) {
		t.Errorf("switch got %d bytes, want the %d-byte frame sent", len(got), len(out))
	}

	in := frame(1000, 8)
	sw.send(t, addr, in)
	virtiotest.WaitFor(t, "the receive interrupt", func() bool { return r.irq.count(net.RXQueue) > 0 })
	u := usedN(t, r.rx, 1)
	if got := r.rx.Written(head)[:u[0].Len]; !bytes.Equal(got, withNumBuffers(packet(net.Header{}, in), 1)) {
		t.Errorf("driver got % x..., want the frame behind a zero header", got[:16])
	}

	sw.conn.Close()
	r.sendTX(packet(net.Header{}, out))
	r.notify(net.TXQueue)
	if st := r.dev.Stats(); st.TXPackets != 1 || st.TXDropBackend != 1 {
		t.Errorf("stats %+v, want 1 packet sent and 1 dropped", st)
	}
	r.reset()
}

// TestSocket_DrainsUnread: frames nobody reads never hold up the switch.
// The socket drains its queue whatever the device does, keeps the first
// RXQueueLen frames in order and drops (and counts) the rest; without
// that, the unread frames would be charged to the switch's send buffer
// until the switch could send to no port at all.
func TestSocket_DrainsUnread(t *testing.T) {
	sw := newFakeSwitch(t, filepath.Join(t.TempDir(), "sw"))
	s, addr := openRegistered(t, sw)
	rc, err := sw.conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	to := &unix.SockaddrUnix{Name: addr.Name}
	const total = 1000
	numbered := func(i int) []byte {
		f := frame(60, 0)
		f[14], f[15] = byte(i>>8), byte(i)
		return f
	}
	for i := range total {
		f := numbered(i)
		deadline := time.Now().Add(testTimeout)
		for {
			var serr error
			rc.Write(func(fd uintptr) bool {
				serr = unix.Sendto(int(fd), f, unix.MSG_DONTWAIT, to)
				return true
			})
			if serr == nil {
				break
			}
			if serr != unix.EAGAIN || time.Now().After(deadline) {
				t.Fatalf("switch send of frame %d: %v", i, serr)
			}
			time.Sleep(time.Millisecond) // the drain goroutine is behind
		}
	}
	virtiotest.WaitFor(t, "the unread frames to be drained", func() bool { return s.RXDropped() == total-net.RXQueueLen })
	buf := make([]byte, net.MaxPacketSize)
	for i := range net.RXQueueLen {
		n, err := s.TryReadPacket(buf)
		if err != nil || !bytes.Equal(buf[:n], packet(net.Header{}, numbered(i))) {
			t.Fatalf("frame %d: %d bytes, %v; want frame %d", i, n, err, i)
		}
	}
	if _, err := s.TryReadPacket(buf); !errors.Is(err, net.ErrNoPacket) {
		t.Errorf("after the queue: %v, want ErrNoPacket", err)
	}
}

// TestSocket_FutureDeadline: a deadline ahead ends a wait when it comes,
// and a frame that comes first ends it sooner.
func TestSocket_FutureDeadline(t *testing.T) {
	sw := newFakeSwitch(t, filepath.Join(t.TempDir(), "sw"))
	s, addr := openRegistered(t, sw)
	buf := make([]byte, net.MaxPacketSize)
	s.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := s.ReadPacket(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("ReadPacket = %v, want ErrDeadlineExceeded", err)
	}
	s.SetReadDeadline(time.Now().Add(testTimeout))
	go func() {
		time.Sleep(10 * time.Millisecond) // let ReadPacket wait; the test passes either way
		sw.conn.WriteToUnix(frame(60, 1), addr)
	}()
	if n, err := s.ReadPacket(buf); err != nil || n != net.HeaderSize+60 {
		t.Errorf("ReadPacket = %d, %v; want the frame", n, err)
	}
}
