// Package netswitch is a learning Ethernet switch that runs inside a host
// process (a Go test, or vmm lab): the virtual L2 segment of a network of
// VMs, each its own vmm process with --net socket=PATH. It needs no root,
// no TAP and no network namespace: nothing touches a real interface.
//
// The switch listens on a unix datagram socket. Each port is a client's
// socket address; every datagram is one plain Ethernet frame, except a
// 6-byte datagram, which registers the sender's MAC before it sends any
// frame (virtio/net's Socket sends it on open). A registration may carry
// (SCM_RIGHTS) one end of a unix datagram socket pair, the port's link:
// the switch then sends the port's frames on that end, and the client
// reads them from the other (see Route for why, and for ports with
// none). The switch learns where each MAC lives from registrations and
// source addresses, forwards unicast to the one port that owns the
// destination, floods broadcast, multicast and unknown unicast to every
// other port, and never sends a frame back to its sender (IEEE 802.1D's
// forwarding and filtering, with no ageing: a MAC moves when it shows up
// on another port, and a port whose socket is gone is forgotten).
package netswitch

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	vnet "github.com/vmm-dev/vmm/virtio/net"
)

const (
	// MaxFrame bounds a datagram the switch forwards: room for jumbo
	// frames and a 64 KiB TSO packet's worth, where a backend carries
	// them. A larger datagram is dropped.
	MaxFrame = 65535
	// minFrame is an Ethernet header: destination, source, type.
	minFrame = 14

	// maxPorts and maxMACsPerPort bound the tables, so a guest sending
	// from random source addresses cannot grow them without end. A MAC
	// the table has no room for is simply not learned: frames to it are
	// flooded, which is correct, only slower.
	maxPorts       = 1024
	maxMACsPerPort = 256
)

// Reasons New refuses a path.
var (
	ErrNotSocket = errors.New("exists and is not a socket")
	ErrInUse     = errors.New("another program listens there")
)

// Switch is a running switch. Its methods are safe from any goroutine.
type Switch struct {
	path string
	conn *net.UnixConn
	rc   syscall.RawConn
	file fileID // the socket file New made, so Close removes no other
	done chan struct{}
	once sync.Once

	mu        sync.Mutex
	ports     map[string]*port   // by socket address
	macs      map[vnet.MAC]*port // where each learned MAC lives
	dropped   uint64             // datagrams from senders that are no port
	forgotten uint64             // ports forgotten because their socket went away
}

// port is one client socket and what the switch knows of it. Guarded by
// Switch.mu; its out socket is used only by the serve goroutine, and
// closed by it or, once it has returned, by Close.
type port struct {
	addr  *unix.SockaddrUnix
	out   sock // the socket stats.Route names; noSock for the shared one
	macs  map[vnet.MAC]struct{}
	stats PortStats
}

// route makes the port send on out from now on, closing what it sent on
// before.
func (p *port) route(r Route, out sock) {
	p.out.close()
	p.out, p.stats.Route = out, r
}

// New listens at path, a file system path (or @name for an abstract
// address), and starts switching. A socket file left at path by a switch
// that is gone is removed first; any other file, or a socket someone
// still listens on, is refused.
func New(path string) (*Switch, error) {
	if err := clearStale(path); err != nil {
		return nil, err
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("switch %s: %w", path, err)
	}
	s := &Switch{
		path:  path,
		conn:  conn,
		done:  make(chan struct{}),
		ports: make(map[string]*port),
		macs:  make(map[vnet.MAC]*port),
	}
	if !strings.HasPrefix(path, "@") { // an abstract address has no file
		s.file, _ = statID(path)
	}
	if s.rc, err = conn.SyscallConn(); err != nil {
		s.closeSocket()
		return nil, fmt.Errorf("switch %s: %w", path, err)
	}
	go s.serve()
	return s, nil
}

// clearStale removes a socket file nobody listens on.
func clearStale(path string) error {
	if strings.HasPrefix(path, "@") {
		return nil
	}
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("switch %s: %w", path, err)
	case fi.Mode()&fs.ModeSocket == 0:
		return fmt.Errorf("switch %s: %w: remove it or pick another path", path, ErrNotSocket)
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	switch {
	case err == nil:
		c.Close()
		return fmt.Errorf("switch %s: %w (another switch?): pick another path", path, ErrInUse)
	case errors.Is(err, syscall.EPROTOTYPE): // a live stream or seqpacket socket
		return fmt.Errorf("switch %s: %w (a stream socket): pick another path", path, ErrInUse)
	case !errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("switch %s: check for a stale socket: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("switch %s: remove stale socket: %w", path, err)
	}
	return nil
}

// Addr is the path the switch listens at: what --net socket= names.
func (s *Switch) Addr() string { return s.path }

// Close stops the switch, waits for its goroutine and removes its socket
// file. Clients' writes fail from then on.
func (s *Switch) Close() error {
	var err error
	s.once.Do(func() {
		err = s.closeSocket()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, p := range s.ports {
			p.out.close()
			p.out = noSock
		}
	})
	return err
}

func (s *Switch) closeSocket() error {
	err := s.conn.Close()
	if s.rc != nil {
		<-s.done
	}
	if id, serr := statID(s.path); serr == nil && s.file != (fileID{}) && id == s.file {
		os.Remove(s.path)
	}
	return err
}

// serve reads datagrams until Close.
func (s *Switch) serve() {
	defer close(s.done)
	buf := make([]byte, MaxFrame+1) // one byte more tells an oversize datagram
	// Room for a link, one descriptor (two fit, for alignment): the
	// kernel discards any more, and says so with MSG_CTRUNC.
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		n, oobn, flags, from, err := s.conn.ReadMsgUnix(buf, oob)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue // nothing else is expected of a unix datagram socket
		}
		link := noSock
		switch fds := rights(oob[:oobn]); {
		case len(fds) == 1 && flags&unix.MSG_CTRUNC == 0:
			link = sock(fds[0])
		default:
			for _, fd := range fds {
				unix.Close(fd)
			}
		}
		s.handle(buf[:n], from, link)
	}
}

// handle acts on one datagram: a registration, or a frame to switch. It
// owns link, a descriptor that came with the datagram, or noSock.
func (s *Switch) handle(b []byte, from *net.UnixAddr, link sock) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() { link.close() }() // unless a port took it
	// An unbound sender reads as "@" (or ""): there is no answering it.
	if from == nil || from.Name == "" || from.Name == "@" {
		s.dropped++
		return
	}
	p := s.ports[from.Name]
	valid := len(b) == vnet.RegistrationSize || len(b) >= minFrame && len(b) <= MaxFrame
	if p == nil {
		if !valid || len(s.ports) >= maxPorts {
			s.dropped++
			return
		}
		p = &port{addr: &unix.SockaddrUnix{Name: from.Name}, out: noSock, macs: make(map[vnet.MAC]struct{})}
		p.stats.Addr = from.Name
		if own, err := ownSock(); err == nil {
			p.route(RouteOwn, own)
		}
		s.ports[from.Name] = p
	}
	switch {
	case !valid:
		p.stats.Dropped++
	case len(b) == vnet.RegistrationSize:
		if !s.learn(p, vnet.MAC(b)) {
			p.stats.Dropped++
			return
		}
		if link == noSock {
			return
		}
		if l, err := linkSock(int(link)); err == nil {
			p.route(RouteLink, l)
			link = noSock
		}
	default:
		s.forward(p, b)
	}
}

// learn records that mac lives on p, moving it from another port. It
// reports false for an address no station has: multicast or zero.
func (s *Switch) learn(p *port, mac vnet.MAC) bool {
	if mac[0]&1 != 0 || mac == (vnet.MAC{}) {
		return false
	}
	owner := s.macs[mac]
	if owner == p || len(p.macs) >= maxMACsPerPort {
		return true
	}
	if owner != nil {
		delete(owner.macs, mac)
	}
	s.macs[mac] = p
	p.macs[mac] = struct{}{}
	return true
}

// forward switches a frame that came in on p.
func (s *Switch) forward(p *port, frame []byte) {
	dst, src := vnet.MAC(frame[0:6]), vnet.MAC(frame[6:12])
	if src[0]&1 != 0 { // no station sends from a group address
		p.stats.Dropped++
		return
	}
	s.learn(p, src)
	if dst[0]&1 != 0 {
		s.flood(p, frame)
		return
	}
	switch owner := s.macs[dst]; owner {
	case nil:
		s.flood(p, frame)
	case p: // the destination is on the sender's own port: filter
		p.stats.Dropped++
	default:
		p.stats.Forwarded++
		s.send(owner, frame)
	}
}

// flood sends a frame to every port but the one it came in on.
func (s *Switch) flood(p *port, frame []byte) {
	p.stats.Flooded++
	for _, q := range s.ports {
		if q != p {
			s.send(q, frame)
		}
	}
}

// send hands a frame to port q without waiting: a port with no room
// loses it; a port whose socket is gone is forgotten.
func (s *Switch) send(q *port, frame []byte) {
	var err error
	switch q.stats.Route {
	case RouteLink:
		err = q.out.sendto(frame, nil)
	case RouteOwn:
		err = q.out.sendto(frame, q.addr)
		if errors.Is(err, unix.EPERM) {
			// The client is connected, to this switch (it takes
			// datagrams from the listening socket alone) or another.
			q.route(RouteShared, noSock)
			err = s.sendShared(q, frame)
		}
	default:
		err = s.sendShared(q, frame)
	}
	switch {
	case err == nil:
		q.stats.Delivered++
	case errors.Is(err, unix.ECONNREFUSED), errors.Is(err, unix.ENOENT), errors.Is(err, unix.EPERM):
		// Nobody is bound there any more (or the link's other end is
		// closed), or the socket there talks to another switch.
		s.forget(q)
	default: // EAGAIN, ENOBUFS: its queue is full
		q.stats.Lost++
	}
}

// sendShared sends a frame to q from the listening socket.
func (s *Switch) sendShared(q *port, frame []byte) error {
	var err error
	if rerr := s.rc.Write(func(fd uintptr) bool {
		err = sock(fd).sendto(frame, q.addr)
		return true
	}); rerr != nil {
		return rerr
	}
	return err
}

// forget removes port q and the MACs it owned.
func (s *Switch) forget(q *port) {
	q.route(RouteShared, noSock)
	for mac := range q.macs {
		delete(s.macs, mac)
	}
	delete(s.ports, q.stats.Addr)
	s.forgotten++
}
