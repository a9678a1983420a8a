package net

import (
	"errors"
	"fmt"
	"io/fs"
	stdnet "net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Switch sockets carry one plain Ethernet frame per datagram, with no
// virtio-net header: a switch forwards frames between VMs that each run in
// their own process, and needs neither root nor a network namespace.
const (
	// RegistrationSize is the size of the datagram a port sends first,
	// its own MAC, so the switch knows where that address lives before
	// any frame does: no frame is that short. It may carry one end of a
	// unix datagram socket pair (SCM_RIGHTS), the port's link, which the
	// switch then sends the port's frames on (see Socket).
	RegistrationSize = 6
	// MaxSocketFrame bounds a frame on a switch socket: 1514 bytes of
	// Ethernet (a 1500-byte MTU) and an 802.1Q tag. With no segmentation
	// offload negotiated a driver sends nothing longer.
	MaxSocketFrame = 1518
)

// maxSocketPath is sun_path's 108 bytes less the terminating NUL.
const maxSocketPath = 107

const (
	// sendWait bounds how long WritePacket waits for room in the
	// switch's queue before it drops the frame: a switch that stopped
	// reading must not stall the guest's transmit queue.
	sendWait = 100 * time.Millisecond
	// redialEvery spaces the attempts to reach a switch that went away,
	// so a guest sending into the void costs no more than a failed send.
	redialEvery = time.Second
)

// Reasons WritePacket refuses a packet; the device drops it and counts it
// in TXDropBackend.
var (
	ErrOffloadPacket = errors.New("packet asks for checksum or segmentation offload, which a switch socket cannot carry")
	ErrFrameSize     = errors.New("frame size outside 14 to 1518 bytes")
	errRedialWait    = errors.New("switch gone; next reconnection attempt later")
)

// Socket is a Backend on a unix datagram socket connected to a switch.
// The socket is autobound (an abstract address, no file to clean up),
// non-blocking and in the Go runtime's poller. Frames go out on it; they
// come in on the port's link, a socket pair whose other end went to the
// switch with the registration, or on the socket itself from a switch
// that takes no link (see register for why). A goroutine per socket
// drains them into a queue of at most RXQueueLen frames, which
// ReadPacket reads (see RXQueueLen for why). It carries complete frames
// only: the device offers no offloads over it (Offloads).
type Socket struct {
	path string
	sa   *unix.SockaddrUnix
	mac  MAC
	f    *os.File
	rc   syscall.RawConn

	rx     *rxQueue
	drains sync.WaitGroup // the drain goroutines

	// wmu serialises writers: the write deadline and reconnection are
	// per socket.
	wmu      sync.Mutex
	lastDial time.Time

	// lmu guards the link and closed; held after wmu where both are.
	lmu    sync.Mutex
	link   *os.File // this port's end of its link; nil without one
	closed bool
}

var _ Backend = (*Socket)(nil)

// OpenSocket connects to the switch listening at switchPath (a path, or
// @name for an abstract address) and registers mac with it. Errors are
// *SocketError, or wrap ErrBadMAC.
func OpenSocket(switchPath string, mac stdnet.HardwareAddr) (*Socket, error) {
	if switchPath == "" || len(switchPath) > maxSocketPath || strings.IndexByte(switchPath, 0) >= 0 {
		return nil, &SocketError{Path: switchPath, Op: "check path", Err: ErrSocketPath}
	}
	var m MAC
	if len(mac) != len(m) || !MAC(mac).valid() {
		return nil, fmt.Errorf("%w: %v", ErrBadMAC, mac)
	}
	copy(m[:], mac)
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, socketError(switchPath, "socket", err)
	}
	s, err := setupSocket(fd, switchPath, m)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := s.register(); err != nil {
		s.Close()
		return nil, socketError(switchPath, "register", err)
	}
	s.startDrain(s.f, s.rc)
	return s, nil
}

// setupSocket binds fd to an address the switch can answer, connects it
// to the switch and hands it to the runtime's poller.
func setupSocket(fd int, path string, mac MAC) (*Socket, error) {
	// An empty address autobinds: the kernel picks an abstract name. An
	// unbound socket could send, but the switch could not answer it.
	if err := unix.Bind(fd, &unix.SockaddrUnix{}); err != nil {
		return nil, socketError(path, "bind", err)
	}
	sa := &unix.SockaddrUnix{Name: path}
	if err := unix.Connect(fd, sa); err != nil {
		return nil, socketError(path, "connect", err)
	}
	f := os.NewFile(uintptr(fd), "switch socket "+path)
	rc, err := f.SyscallConn()
	if err == nil {
		// Proves the descriptor is in the poller: ErrNoDeadline if not.
		err = f.SetReadDeadline(time.Time{})
	}
	if err != nil {
		f.Close()
		return nil, socketError(path, "poll", err)
	}
	return &Socket{path: path, sa: sa, mac: mac, f: f, rc: rc, rx: newRXQueue()}, nil
}

// socketError classifies a failed step of OpenSocket.
func socketError(path, op string, err error) error {
	e := &SocketError{Path: path, Op: op, Cause: err}
	switch {
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR):
		e.Err = ErrNoSwitch
	case errors.Is(err, unix.ECONNREFUSED):
		// No socket is bound there: a stale socket file, or a file that
		// is no socket at all.
		e.Err = ErrNoSwitch
		if fi, serr := os.Stat(path); serr == nil && fi.Mode()&fs.ModeSocket == 0 {
			e.Err = ErrNotSwitch
		}
	case errors.Is(err, unix.EPROTOTYPE): // a stream or seqpacket socket
		e.Err = ErrNotSwitch
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		e.Err = ErrSocketPermission
	}
	return e
}

// Path is the switch's socket.
func (s *Socket) Path() string { return s.path }

// ReadPacket returns the next frame behind a zero virtio-net header,
// waiting for one until the read deadline.
func (s *Socket) ReadPacket(p []byte) (int, error) { return s.rx.take(p, true) }

// TryReadPacket returns the next frame if one is queued.
func (s *Socket) TryReadPacket(p []byte) (int, error) { return s.rx.take(p, false) }

// SetReadDeadline sets the deadline for ReadPacket and TryReadPacket.
func (s *Socket) SetReadDeadline(t time.Time) error {
	s.rx.setDeadline(t)
	return nil
}

// RXDropped counts received frames dropped: longer than MaxSocketFrame,
// or arriving while RXQueueLen frames already waited for the device.
func (s *Socket) RXDropped() uint64 { return s.rx.dropped.Load() }

// startDrain drains f, the socket or a link, in a goroutine of its own.
func (s *Socket) startDrain(f *os.File, rc syscall.RawConn) {
	s.drains.Go(func() { s.drain(f, rc) })
}

// drain moves frames from f to the queue, as they come, until f is
// closed. A frame that no driver on a plain link can have sent is dropped.
func (s *Socket) drain(f *os.File, rc syscall.RawConn) {
	scratch := make([]byte, MaxSocketFrame+1) // for frames the queue has no room for
	for {
		var buf []byte
		var kept bool
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			// A buffer is taken when a frame may be there, and given
			// back before waiting: a link that stays empty holds none.
			buf = s.rx.buffer()
			kept = buf != nil
			if !kept {
				buf = scratch
			}
			n, rerr = unix.Read(int(fd), buf)
			if rerr == unix.EAGAIN {
				s.rx.unused(buf, kept)
				return false // wait in the poller for the next
			}
			return true
		})
		switch {
		case err != nil: // closed
			return
		case rerr == unix.EINTR, rerr == unix.ECONNREFUSED, rerr == unix.ECONNRESET:
			s.rx.unused(buf, kept) // a pending socket error is reported once
		case rerr != nil:
			// Unheard of on a unix datagram socket; the device hears of
			// it once the frames before it are read.
			s.rx.fail(&os.PathError{Op: "read", Path: f.Name(), Err: rerr})
			return
		case n > MaxSocketFrame || !kept:
			s.rx.unused(buf, kept)
			s.rx.dropped.Add(1)
		default:
			s.rx.push(buf[:n])
		}
	}
}

// WritePacket sends the packet's frame without its header. It refuses a
// header that asks for an offload, and a frame no plain link carries. A
// switch that went away makes it fail at once (the device counts the
// drop); it then reconnects, at most every redialEvery, so a switch
// restarted at the same path gets the port back.
func (s *Socket) WritePacket(p []byte) error {
	h, err := ParseHeader(p)
	if err != nil {
		return err
	}
	if h.Flags&HdrFNeedsCsum != 0 || h.GSOType != GSONone {
		return ErrOffloadPacket
	}
	frame := p[HeaderSize:]
	if len(frame) < ethHeaderLen || len(frame) > MaxSocketFrame {
		return fmt.Errorf("%w: %d", ErrFrameSize, len(frame))
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	err = s.send(frame, nil)
	if gone(err) {
		if err = s.redial(); err == nil {
			err = s.send(frame, nil)
		}
	}
	if err != nil {
		return fmt.Errorf("switch socket %s: send: %w", s.path, err)
	}
	return nil
}

// gone reports whether a send failed because the switch's socket closed:
// the first send after that gets ECONNREFUSED and disconnects the socket,
// later ones ENOTCONN.
func gone(err error) bool {
	return errors.Is(err, unix.ECONNREFUSED) || errors.Is(err, unix.ENOTCONN)
}

// redial connects to the switch's path again and registers there, with a
// new link. The caller holds wmu.
func (s *Socket) redial() error {
	if !s.lastDial.IsZero() && time.Since(s.lastDial) < redialEvery {
		return errRedialWait
	}
	s.lastDial = time.Now()
	var err error
	if cerr := s.rc.Control(func(fd uintptr) { err = unix.Connect(int(fd), s.sa) }); cerr != nil {
		return cerr
	}
	if err != nil {
		return fmt.Errorf("reconnect: %w", err)
	}
	return s.register()
}

// send sends one datagram, with control data oob if not nil. When the
// switch's queue is full it waits up to sendWait for room, then gives up.
func (s *Socket) send(b, oob []byte) error {
	err := s.sendOnce(b, oob, false)
	if !errors.Is(err, unix.EAGAIN) {
		return err
	}
	if err := s.f.SetWriteDeadline(time.Now().Add(sendWait)); err != nil {
		return err
	}
	defer s.f.SetWriteDeadline(time.Time{})
	return s.sendOnce(b, oob, true)
}

// sendOnce makes one attempt, or with wait, waits in the poller until
// the switch has room or the write deadline passes.
func (s *Socket) sendOnce(b, oob []byte, wait bool) error {
	var werr error
	err := s.rc.Write(func(fd uintptr) bool {
		for {
			if oob == nil {
				_, werr = unix.Write(int(fd), b)
			} else {
				werr = unix.Sendmsg(int(fd), b, oob, nil, 0)
			}
			if werr != unix.EINTR {
				return !wait || werr != unix.EAGAIN
			}
		}
	})
	if err != nil { // closed, or the deadline passed
		return err
	}
	return werr
}

// Offloads is zero: a plain frame has no header to ask for a checksum or
// describe a segment, so the device offers the driver neither.
func (s *Socket) Offloads() uint64 { return 0 }

// SetOffloads accepts only a negotiation without offloads, which is all
// the device offers over a Socket.
func (s *Socket) SetOffloads(features uint64) error {
	if features&offloadFeatures != 0 {
		return fmt.Errorf("switch socket %s: offloads %#x negotiated, none offered: %w", s.path, features&offloadFeatures, ErrOffloadPacket)
	}
	return nil
}

// Close closes the socket and its link; a waiting ReadPacket returns
// os.ErrClosed. The switch forgets the port the next time it sends to it.
func (s *Socket) Close() error {
	s.rx.close()
	s.lmu.Lock()
	s.closed = true
	s.setLinkLocked(nil, nil)
	s.lmu.Unlock()
	err := s.f.Close()
	s.drains.Wait()
	return err
}
