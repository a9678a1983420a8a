package container

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"syscall"

	"github.com/vmm-dev/vmm/guestinit/protocol"
	"github.com/vmm-dev/vmm/vmm"
)

// Channel is the host end of a run's virtio-console ports (see
// protocol.PortStdout and the others): the workload's stdout and stderr
// go to the writers given, stdin comes from the reader given, and the
// control port carries signals and window sizes in and the exit status
// out.
type Channel struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	withStdin      bool

	toGuest *lineQueue

	mu      sync.Mutex
	line    []byte // an incomplete control line from the guest
	skip    bool   // dropping the rest of an overlong line
	status  int
	exited  bool
	badLine []string
}

// NewChannel returns a channel for a workload. withStdin adds the stdin
// port (-i or -t); stdin may be nil then (-t without -i), which the guest
// reads as an immediate end of file.
func NewChannel(stdin io.Reader, stdout, stderr io.Writer, withStdin bool) *Channel {
	return &Channel{stdin: stdin, stdout: stdout, stderr: stderr, withStdin: withStdin, toGuest: newLineQueue()}
}

// Ports are the machine's console ports for the channel.
func (c *Channel) Ports() []vmm.Port {
	ports := []vmm.Port{
		{Name: protocol.PortStdout, Out: c.stdout},
		{Name: protocol.PortStderr, Out: c.stderr},
		{Name: protocol.PortControl, In: c.toGuest, Out: controlSink{c}},
	}
	if c.withStdin {
		ports = append(ports, vmm.Port{Name: protocol.PortStdin, In: c.stdin})
	}
	return ports
}

// ErrChannelClosed is returned for messages sent after Close.
var ErrChannelClosed = errors.New("the run's channel is closed")

// Signal asks guestinit to deliver sig to the workload.
func (c *Channel) Signal(sig syscall.Signal) error {
	return c.send(protocol.SignalMessage(int(sig)))
}

// Resize tells the workload's terminal its new size.
func (c *Channel) Resize(rows, cols uint16) error {
	return c.send(protocol.WinsizeMessage(rows, cols))
}

func (c *Channel) send(m protocol.Control) error {
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	return c.toGuest.push(b)
}

// ExitStatus is the status the guest reported; ok is false while it has
// reported none.
func (c *Channel) ExitStatus() (status int, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status, c.exited
}

// BadLines are control lines from the guest the host could not use, for
// diagnostics.
func (c *Channel) BadLines() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.badLine...)
}

// Close ends the host-to-guest control stream, which lets the console
// device's reader of it finish. Call it after the machine has stopped.
func (c *Channel) Close() { c.toGuest.close() }

// controlSink takes what the guest writes on the control port.
type controlSink struct{ c *Channel }

func (s controlSink) Write(p []byte) (int, error) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for rest := p; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		chunk := rest
		if i >= 0 {
			chunk = rest[:i+1]
		}
		rest = rest[len(chunk):]
		if !c.skip {
			c.line = append(c.line, chunk...)
		}
		if len(c.line) > protocol.MaxControlLine {
			c.line, c.skip = c.line[:0], true
			c.note("(overlong line)")
		}
		if i < 0 {
			continue
		}
		if c.skip {
			c.skip = false
			continue
		}
		c.handle(string(c.line))
		c.line = c.line[:0]
	}
	return len(p), nil
}

// handle takes one complete line; c.mu is held.
func (c *Channel) handle(line string) {
	m, err := protocol.ParseControl(line)
	if err != nil || m.Kind != protocol.ControlExit {
		c.note(line)
		return
	}
	c.status, c.exited = m.Status, true
}

// note keeps a few unusable lines; c.mu is held.
func (c *Channel) note(line string) {
	if len(c.badLine) < 8 {
		c.badLine = append(c.badLine, line)
	}
}

// lineQueue is an io.Reader of messages pushed from other goroutines:
// Read blocks until there is one, and returns io.EOF after close. Pushes
// never block on the guest; a guest that never reads its control port
// holds at most maxQueued messages.
type lineQueue struct {
	mu     sync.Mutex
	ready  *sync.Cond
	buf    []byte
	closed bool
}

const maxQueued = 64 * protocol.MaxControlLine

func newLineQueue() *lineQueue {
	q := &lineQueue{}
	q.ready = sync.NewCond(&q.mu)
	return q
}

// ErrControlBacklog is returned when the guest has left too many control
// messages unread.
var ErrControlBacklog = errors.New("the guest is not reading its control port")

func (q *lineQueue) push(b []byte) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrChannelClosed
	}
	if len(q.buf)+len(b) > maxQueued {
		return ErrControlBacklog
	}
	q.buf = append(q.buf, b...)
	q.ready.Broadcast()
	return nil
}

func (q *lineQueue) Read(p []byte) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.buf) == 0 && !q.closed {
		q.ready.Wait()
	}
	if len(q.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, q.buf)
	q.buf = q.buf[n:]
	return n, nil
}

func (q *lineQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.ready.Broadcast()
}
