package net

import (
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// register sends the registration, with one end of a new socket pair
// (the port's link) for the switch to send this port's frames on, and
// drains the other end in place of any link before.
//
// A unix datagram is charged to the socket that sent it until it is
// read, and a client connected to the switch, as this one is, lifts the
// kernel's per-socket limit on its queue. Sent from the switch's one
// socket, the frames a stopped vmm left unread would fill that socket's
// buffer, and the switch could send to no port at all; sent on a link,
// they fill the link's buffer alone, and only this port loses frames.
//
// A switch that takes no link never sees it (a plain read discards the
// descriptor) and sends on the socket itself, which is drained as well.
// Where no socket pair can be made (vmm's seccomp filter allows no
// socketpair, so a reconnection has none) the registration goes alone,
// to the same effect.
func (s *Socket) register() error {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		s.setLink(nil, nil)
		return s.send(s.mac[:], nil)
	}
	f := os.NewFile(uintptr(pair[0]), "switch link "+s.path)
	rc, err := f.SyscallConn()
	if err == nil {
		err = f.SetReadDeadline(time.Time{}) // in the poller, or ErrNoDeadline
	}
	if err == nil {
		err = s.send(s.mac[:], unix.UnixRights(pair[1]))
	}
	unix.Close(pair[1])
	if err != nil {
		f.Close()
		return err
	}
	s.setLink(f, rc)
	return nil
}

// setLink makes f the link and drains it; the link before is closed and
// its drain goroutine returns. Once the Socket is closed it closes f.
func (s *Socket) setLink(f *os.File, rc syscall.RawConn) {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	s.setLinkLocked(f, rc)
}

func (s *Socket) setLinkLocked(f *os.File, rc syscall.RawConn) {
	if s.link != nil {
		s.link.Close()
		s.link = nil
	}
	switch {
	case f == nil:
	case s.closed:
		f.Close()
	default:
		s.link = f
		s.startDrain(f, rc)
	}
}
