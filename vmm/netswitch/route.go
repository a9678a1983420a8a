package netswitch

import (
	"errors"

	"golang.org/x/sys/unix"
)

// Route is the socket the switch sends a port's frames on.
//
// A unix datagram that waits unread in a socket's queue is charged to
// the socket that sent it, until it is read. Sent from one socket, every
// port's unread frames would share that socket's send buffer: a port
// that stopped reading would fill it, and the switch could send to no
// port at all. So each port gets a socket of its own, where the client
// lets it.
type Route uint8

const (
	// RouteShared is the switch's listening socket, whose send buffer
	// the ports on this route share: clients connected to the switch
	// that handed it no link, since a connected socket takes datagrams
	// from its peer alone. The kernel holds a connected client to no
	// per-socket datagram limit, so one of them that stops reading
	// fills that buffer, and these ports (no others) lose every frame.
	RouteShared Route = iota
	// RouteOwn is an unbound socket of the port's own, for a client
	// that is not connected; the kernel also holds that client to its
	// per-socket datagram limit (net.unix.max_dgram_qlen). Its frames
	// come from an unnamed address, not the switch's.
	RouteOwn
	// RouteLink is the switch's end of the socket pair the client handed
	// over with its registration, as vmm's socket backend does.
	RouteLink
)

func (r Route) String() string {
	switch r {
	case RouteShared:
		return "shared"
	case RouteOwn:
		return "own"
	case RouteLink:
		return "link"
	}
	return "unknown"
}

// portSendBuffer is the send buffer of a port's own socket or link
// (SO_SNDBUF, which the kernel doubles to 208 KiB): the kernel's default
// for one socket, as the whole switch had before, so one port still gets
// what it had, and all ports together at most maxPorts times that.
const portSendBuffer = 104 << 10

// sock is a unix datagram socket the switch owns and sends one port's
// frames on; noSock stands for the switch's listening socket.
type sock int

const noSock sock = -1

func (k sock) close() {
	if k != noSock {
		unix.Close(int(k))
	}
}

// sendto sends a datagram without waiting; to is nil on a link, which
// is connected.
func (k sock) sendto(b []byte, to unix.Sockaddr) error {
	for {
		err := unix.Sendto(int(k), b, unix.MSG_DONTWAIT, to)
		if err != unix.EINTR {
			return err
		}
	}
}

// ownSock makes a port's own socket, unbound: no one can send to it.
func ownSock() (sock, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return noSock, err
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, portSendBuffer)
	return sock(fd), nil
}

// errNotLink is a descriptor handed over with a registration that is no
// connected unix datagram socket.
var errNotLink = errors.New("not a connected unix datagram socket")

// linkSock checks a descriptor a registration handed over and bounds
// its send buffer. A client may keep a copy and change the socket's
// flags through it; the switch sends with MSG_DONTWAIT, so none of them
// can make it wait.
func linkSock(fd int) (sock, error) {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return noSock, err
	}
	domain, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return noSock, err
	}
	if typ != unix.SOCK_DGRAM || domain != unix.AF_UNIX {
		return noSock, errNotLink
	}
	if _, err := unix.Getpeername(fd); err != nil {
		return noSock, errNotLink
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, portSendBuffer)
	return sock(fd), nil
}

// rights returns the descriptors in a message's control data. The
// caller closes every one it does not keep.
func rights(oob []byte) []int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for _, m := range msgs {
		if got, err := unix.ParseUnixRights(&m); err == nil {
			fds = append(fds, got...)
		}
	}
	return fds
}
