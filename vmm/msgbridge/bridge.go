// Package msgbridge is vmm's host end of a virtio-console port that
// carries agent frames (package guestinit/agent): it serves the port on a
// unix SOCK_SEQPACKET socket, one client at a time, one frame per message.
//
// The port's byte stream carries frames as length | payload. Each message
// a client sends is one payload: the bridge writes it to the guest whole,
// length-prefixed, never interleaved with another. What the guest writes
// is split into frames again and each payload goes to the client connected
// then as one message, or is dropped when none is. A message is atomic,
// so a client that disconnects in the middle of a stream leaves no partial
// frame behind in either direction, and the next client starts on a frame
// boundary both ways.
//
// The port's end toward the guest stays open between clients (console.Port
// notes that an end of file on In closes it for good) until Close.
package msgbridge

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/vmm-dev/vmm/guestinit/agent"
)

// ErrNotSocket: Listen's path is taken by something other than a socket.
var ErrNotSocket = errors.New("path exists and is not a socket")

// ErrInUse: another process is listening at Listen's path.
var ErrInUse = errors.New("socket in use by another process")

// queuedFrames is how many whole frames from clients wait for the guest
// to read them; past it the client's sends wait (back-pressure).
const queuedFrames = 4

// sendBuffer is the socket send buffer asked for: a few frames, so the
// bridge and the client can each have one in flight (the kernel caps it
// at net.core.wmem_max for unprivileged processes).
const sendBuffer = 4 * agent.MaxFrame

// Options are a bridge's optional settings.
type Options struct {
	// Log gets the bridge's warnings (a refused client message, a frame
	// from the guest that cannot be passed on); nil discards them.
	Log io.Writer
}

// Stats count what passed through a bridge.
type Stats struct {
	Clients   uint64 // clients accepted
	ToGuest   uint64 // frames written to the guest
	FromGuest uint64 // frames the guest wrote
	Dropped   uint64 // frames from the guest no client received
	Skipped   uint64 // frames from the guest with a length out of range, skipped
	Refused   uint64 // client messages that were no frame; each ended its client
}

// Bridge serves one port. Its In and Out are the port's vmm.Port ends.
type Bridge struct {
	path string
	ln   *net.UnixListener
	log  io.Writer

	toGuest chan []byte   // whole stream frames, length-prefixed
	done    chan struct{} // closed by Close
	once    sync.Once
	accept  sync.WaitGroup

	mu     sync.Mutex
	client *net.UnixConn // the one client, nil when none

	cur []byte // the frame the guest is reading; only In's Read touches it

	out splitter // guest-to-host frames; only Out's Write touches it
	wmu sync.Mutex

	clients, toGuestN, fromGuest, dropped, skippedN, refused atomic.Uint64
}

// Listen creates the socket at path (mode 0600: the channel runs commands
// as root in the guest) and starts accepting clients. A stale socket left
// there by a vmm that died is replaced; a live one, or anything that is not
// a socket, is refused.
func Listen(path string, opts Options) (*Bridge, error) {
	if err := clearStale(path); err != nil {
		return nil, err
	}
	ln, err := listen(path)
	if err != nil {
		return nil, err
	}
	b := &Bridge{path: path, ln: ln, log: opts.Log, toGuest: make(chan []byte, queuedFrames), done: make(chan struct{})}
	b.out.deliver, b.out.skipped = b.deliver, b.skipped
	b.accept.Add(1)
	go b.acceptLoop()
	return b, nil
}

// clearStale removes a socket at path that nobody listens on.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("%s: %w", path, ErrNotSocket)
	}
	for _, network := range []string{"unixpacket", "unix"} {
		// DialUnix, not Dial: no address resolution, so the VM process
		// links none of the resolver (net.Dial's DNS code).
		if c, err := net.DialUnix(network, nil, &net.UnixAddr{Name: path, Net: network}); err == nil {
			c.Close()
			return fmt.Errorf("%s: %w", path, ErrInUse)
		} else if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.EPROTOTYPE) {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove stale socket: %w", err)
	}
	return nil
}

// listen binds a SEQPACKET socket at path that is mode 0600 from the
// start: the socket's inode mode, set before bind, is what bind gives the
// file (less the umask), so no other user can connect in between.
func listen(path string) (*net.UnixListener, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	if err := unix.Fchmod(fd, 0o600); err != nil {
		return nil, fmt.Errorf("chmod socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		return nil, &os.PathError{Op: "bind", Path: path, Err: err}
	}
	if err := unix.Listen(fd, 1); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	l, err := net.FileListener(f)
	if err != nil {
		os.Remove(path)
		return nil, err
	}
	return l.(*net.UnixListener), nil
}

// Path is where the bridge listens.
func (b *Bridge) Path() string { return b.path }

// In is the port's input: the frames clients send, for the guest. It
// returns end of file only after Close.
func (b *Bridge) In() io.Reader { return guestIn{b} }

// Out is the port's output: what the guest writes, for the client.
func (b *Bridge) Out() io.Writer { return guestOut{b} }

// Stats returns the counts so far.
func (b *Bridge) Stats() Stats {
	return Stats{
		Clients: b.clients.Load(), ToGuest: b.toGuestN.Load(), FromGuest: b.fromGuest.Load(),
		Dropped: b.dropped.Load(), Skipped: b.skippedN.Load(), Refused: b.refused.Load(),
	}
}

// Close stops accepting, disconnects the client, removes the socket and
// ends In. Call it once the machine has stopped.
func (b *Bridge) Close() error {
	var err error
	b.once.Do(func() {
		close(b.done)
		err = b.ln.Close()
		b.mu.Lock()
		if b.client != nil {
			b.client.Close()
		}
		b.mu.Unlock()
		b.accept.Wait()
		if rerr := os.Remove(b.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && err == nil {
			err = rerr
		}
	})
	return err
}

func (b *Bridge) logf(format string, args ...any) {
	if b.log != nil {
		fmt.Fprintf(b.log, "vmm: port bridge %s: "+format+"\n", append([]any{b.path}, args...)...)
	}
}

// acceptLoop serves clients one after the other; while one is served the
// next waits in the listen backlog.
func (b *Bridge) acceptLoop() {
	defer b.accept.Done()
	for {
		conn, err := b.ln.AcceptUnix()
		if err != nil {
			select {
			case <-b.done:
			default:
				b.logf("accept: %v", err)
			}
			return
		}
		b.serve(conn)
	}
}

// serve passes one client's messages to the guest until it disconnects.
func (b *Bridge) serve(conn *net.UnixConn) {
	conn.SetWriteBuffer(sendBuffer)
	b.mu.Lock()
	select {
	case <-b.done:
		b.mu.Unlock()
		conn.Close()
		return
	default:
	}
	b.client = conn
	b.mu.Unlock()
	b.clients.Add(1)
	defer func() {
		b.mu.Lock()
		b.client = nil
		b.mu.Unlock()
		conn.Close()
	}()
	buf := make([]byte, agent.MaxFrame+1) // a message that fills it is too long
	for {
		n, err := conn.Read(buf)
		if err != nil || n == 0 {
			return // the client is gone (a zero-length message is no frame either)
		}
		if _, err := agent.ParseFrame(buf[:n]); err != nil {
			b.refused.Add(1)
			b.logf("client message refused, disconnecting it: %v", err)
			return
		}
		select {
		case b.toGuest <- agent.AppendStream(make([]byte, 0, 4+n), buf[:n]):
			b.toGuestN.Add(1)
		case <-b.done:
			return
		}
	}
}

// deliver sends one payload from the guest to the client, if any.
func (b *Bridge) deliver(payload []byte) {
	b.fromGuest.Add(1)
	b.mu.Lock()
	conn := b.client
	b.mu.Unlock()
	if conn == nil {
		b.dropped.Add(1)
		return
	}
	// Blocks while the client's receive queue is full: the guest is paced
	// by the client. A client gone meanwhile fails it: dropped.
	if _, err := conn.Write(payload); err != nil {
		b.dropped.Add(1)
	}
}

func (b *Bridge) skipped(n uint32) {
	b.skippedN.Add(1)
	b.logf("skipped a %d-byte frame from the guest: frames are 5 to %d bytes", n, agent.MaxFrame)
}

type guestIn struct{ b *Bridge }

// Read gives the guest the frames clients sent, whole and in order,
// blocking while there are none.
func (in guestIn) Read(p []byte) (int, error) {
	b := in.b
	if len(b.cur) == 0 {
		select {
		case f := <-b.toGuest:
			b.cur = f
		case <-b.done:
			return 0, io.EOF
		}
	}
	n := copy(p, b.cur)
	b.cur = b.cur[n:]
	return n, nil
}

type guestOut struct{ b *Bridge }

// Write takes what the guest wrote, in pieces of any size.
func (out guestOut) Write(p []byte) (int, error) {
	out.b.wmu.Lock()
	defer out.b.wmu.Unlock()
	out.b.out.write(p)
	return len(p), nil
}
