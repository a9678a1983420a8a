package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"sync"
)

// ErrClosed is the error of requests on a closed client, or one whose
// connection ended.
var ErrClosed = errors.New("agent connection closed")

// Client talks to a guest's agent. Its methods may be called from several
// goroutines at once; each call is one request. Past MaxRequests in
// flight, calls wait for one to end.
type Client struct {
	t     transport
	done  chan struct{} // closed when reading stops
	err   error         // why reading stopped; set before done closes
	slots chan struct{} // one per request in flight, up to MaxRequests

	mu     sync.Mutex
	calls  map[uint32]*call
	nextID uint32
	closed bool
}

// NewClient talks to the agent over the port's raw byte stream, such as
// a QEMU socket chardev: frames are length-prefixed. The client owns
// conn and closes it on Close.
func NewClient(conn io.ReadWriteCloser) *Client {
	return newClient(newStreamTransport(conn, conn))
}

// NewPacketClient talks to the agent over a message-oriented connection
// where each message is one frame's payload: a unix SOCK_SEQPACKET
// connection to vmm's bridge of the port (package vmm/msgbridge). The
// client owns conn.
func NewPacketClient(conn net.Conn) *Client {
	return newClient(newPacketTransport(conn))
}

// Dial connects to vmm's bridge of the agent port at socketPath (vmm boot
// --port vmm.agent,socket=PATH, vmm run --agent PATH). The bridge serves
// one client at a time: a second waits until the first closes.
func Dial(ctx context.Context, socketPath string) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unixpacket", socketPath)
	if err != nil {
		return nil, fmt.Errorf("dial the agent: %w", err)
	}
	return NewPacketClient(conn), nil
}

func newClient(t transport) *Client {
	c := &Client{t: t, done: make(chan struct{}), calls: map[uint32]*call{}, slots: make(chan struct{}, MaxRequests),
		// Ids start anywhere, so those of an earlier client's requests
		// the guest still answers are unlikely to be this one's.
		nextID: rand.Uint32()}
	go c.readLoop()
	return c
}

// Cmd is a program to run in the guest.
type Cmd struct {
	Argv []string
	// Env is added to the guest's environment for programs (in run mode,
	// the workload's); a later K=V wins.
	Env []string
	// Dir is the working directory; empty is the guest's default (in
	// run mode, the workload's).
	Dir string
	// User is uid[:gid], or in run mode a user name of the image; empty
	// is the guest's default (in run mode, the workload's user).
	User string
	// Stdin, if set, is copied to the program's stdin, which ends when
	// Stdin does; nil gives it /dev/null. As with os/exec, a Stdin that
	// never ends keeps a goroutine reading it after Exec returns.
	Stdin io.Reader
	// Stdout and Stderr get the program's output byte for byte; nil
	// discards it. A failing writer cancels the program. Exec does not
	// return while a Write to them is in progress, and none starts after.
	Stdout, Stderr io.Writer
}

// StartError is Exec's error when the program did not start; Status is
// docker exec's for it: 127 (not found) or 126 (cannot run).
type StartError struct {
	Status  int
	Message string
}

func (e *StartError) Error() string { return "agent exec: " + e.Message }

// RemoteError is a request the guest refused or failed. errors.Is matches
// it against fs.ErrNotExist, fs.ErrPermission, fs.ErrInvalid and ErrBusy
// by its Code.
type RemoteError struct {
	Op      string // exec, put, get, poweroff
	Code    Code
	Message string
}

func (e *RemoteError) Error() string { return fmt.Sprintf("agent %s: %s", e.Op, e.Message) }

func (e *RemoteError) Is(target error) bool {
	switch e.Code {
	case CodeNotExist:
		return target == fs.ErrNotExist
	case CodePermission:
		return target == fs.ErrPermission
	case CodeInvalid:
		return target == fs.ErrInvalid
	case CodeBusy:
		return target == ErrBusy
	}
	return false
}

// call is one request in flight.
type call struct {
	id   uint32
	op   string
	win  *window
	out  map[Type]io.Writer // where data frames go: Stdout, Stderr or GetData
	done chan struct{}      // closed by end

	// writing is held while a data frame goes to out, and by a caller
	// ending the call early, so nothing is written to out once the
	// call has returned. Lock order: writing, then Client.mu.
	writing sync.Mutex

	// Set by end, read after done.
	status int
	err    error
	ended  bool // guarded by Client.mu
}

// Exec runs cmd in the guest and returns its exit status: its exit code,
// or 128+n when signal n killed it. When the program could not start the
// error is a *StartError carrying docker exec's status (127 or 126). When
// ctx ends first the program is killed and Exec returns ctx's error.
func (c *Client) Exec(ctx context.Context, cmd Cmd) (int, error) {
	cl := &call{op: "exec", out: map[Type]io.Writer{TypeStdout: orDiscard(cmd.Stdout), TypeStderr: orDiscard(cmd.Stderr)}}
	req := ExecRequest{Argv: cmd.Argv, Env: cmd.Env, Dir: cmd.Dir, User: cmd.User, Stdin: cmd.Stdin != nil}
	if err := c.begin(ctx, cl, TypeExec, req.Marshal()); err != nil {
		return -1, err
	}
	if cmd.Stdin != nil {
		go c.stream(cl, cmd.Stdin, TypeStdin, TypeStdinEnd)
	}
	if err := c.wait(ctx, cl); err != nil {
		var se *StartError
		if errors.As(err, &se) {
			return se.Status, err
		}
		return -1, err
	}
	return cl.status, nil
}

// PutFile writes r's contents to the guest file at guestPath (inside the
// guest's root: in run mode the container's), created or replaced with
// the permission bits of mode. The file appears only once complete.
func (c *Client) PutFile(ctx context.Context, guestPath string, r io.Reader, mode fs.FileMode) error {
	cl := &call{op: "put"}
	if err := c.begin(ctx, cl, TypePut, PutRequest{Path: guestPath, Mode: mode.Perm()}.Marshal()); err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- c.stream(cl, r, TypePutData, TypePutEnd) }()
	err := c.wait(ctx, cl)
	if err == nil {
		err = <-errc // done after PutEnd went out
	}
	return err
}

// GetFile copies the guest's regular file at guestPath to w.
func (c *Client) GetFile(ctx context.Context, guestPath string, w io.Writer) error {
	cl := &call{op: "get", out: map[Type]io.Writer{TypeGetData: w}}
	if err := c.begin(ctx, cl, TypeGet, MarshalPath(guestPath)); err != nil {
		return err
	}
	return c.wait(ctx, cl)
}

// PowerOff asks guestinit, in agent mode, to power the machine off. It
// returns once the guest has said it will.
func (c *Client) PowerOff(ctx context.Context) error {
	cl := &call{op: "poweroff"}
	if err := c.begin(ctx, cl, TypePowerOff, nil); err != nil {
		return err
	}
	return c.wait(ctx, cl)
}

// Close cancels the requests in flight, which return ErrClosed, and
// closes the connection.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	calls := make([]*call, 0, len(c.calls))
	for _, cl := range c.calls {
		calls = append(calls, cl)
	}
	c.mu.Unlock()
	for _, cl := range calls {
		cl.writing.Lock()
		c.end(cl, 0, ErrClosed)
		cl.writing.Unlock()
		c.send(cl.id, TypeCancel, nil)
	}
	return c.t.close()
}

// begin registers cl under a fresh id and sends its request.
func (c *Client) begin(ctx context.Context, cl *call, t Type, body []byte) error {
	cl.done = make(chan struct{})
	if t == TypeExec || t == TypePut {
		cl.win = newWindow()
	}
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return c.err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		<-c.slots
		return ErrClosed
	}
	select {
	case <-c.done:
		c.mu.Unlock()
		<-c.slots
		return c.err
	default:
	}
	for {
		c.nextID++
		if _, used := c.calls[c.nextID]; !used {
			break
		}
	}
	cl.id = c.nextID
	c.calls[cl.id] = cl
	c.mu.Unlock()
	if err := c.send(cl.id, t, body); err != nil {
		c.end(cl, 0, err)
		return err
	}
	return nil
}

// wait waits for cl to end; when ctx ends first it cancels the request.
func (c *Client) wait(ctx context.Context, cl *call) error {
	select {
	case <-cl.done:
		return cl.err
	case <-ctx.Done():
		cl.writing.Lock()
		c.end(cl, 0, ctx.Err())
		cl.writing.Unlock()
		c.send(cl.id, TypeCancel, nil)
		return ctx.Err()
	}
}

// end finishes cl once; later frames with its id are dropped.
func (c *Client) end(cl *call, status int, err error) {
	c.mu.Lock()
	if cl.ended {
		c.mu.Unlock()
		return
	}
	cl.ended = true
	if c.calls[cl.id] == cl {
		delete(c.calls, cl.id)
	}
	c.mu.Unlock()
	cl.status, cl.err = status, err
	if cl.win != nil {
		cl.win.stop()
	}
	close(cl.done)
	<-c.slots
}

func (c *Client) send(id uint32, t Type, body []byte) error {
	p, err := Frame{ID: id, Type: t, Body: body}.Payload()
	if err != nil {
		return err
	}
	if err := c.t.write(p); err != nil {
		return fmt.Errorf("agent: send %s: %w", t, err)
	}
	return nil
}

// stream sends r as data frames of type data within the window, then an
// end frame. It stops when cl ends.
func (c *Client) stream(cl *call, r io.Reader, data, end Type) error {
	buf := make([]byte, MaxData)
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			if !cl.win.acquire(n) {
				return cl.err
			}
			if err := c.send(cl.id, data, buf[:n]); err != nil {
				c.end(cl, 0, err)
				return err
			}
		}
		if rerr != nil {
			if !errors.Is(rerr, io.EOF) && cl.op == "put" {
				err := fmt.Errorf("agent put: read the file: %w", rerr)
				c.end(cl, 0, err)
				c.send(cl.id, TypeCancel, nil)
				return err
			}
			// exec: a failing stdin ends it, as os/exec's copy does.
			if err := c.send(cl.id, end, nil); err != nil {
				c.end(cl, 0, err)
				return err
			}
			return nil
		}
	}
}

// readLoop takes the guest's frames and hands them to their calls until
// the connection fails; then every call in flight fails.
func (c *Client) readLoop() {
	var err error
	for {
		var p []byte
		if p, err = c.t.read(); err != nil {
			break
		}
		f, perr := ParseFrame(p)
		if perr != nil {
			err = perr
			break
		}
		c.handle(f)
	}
	c.mu.Lock()
	closed := c.closed
	calls := make([]*call, 0, len(c.calls))
	for _, cl := range c.calls {
		calls = append(calls, cl)
	}
	c.mu.Unlock()
	if closed || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		err = ErrClosed
	} else {
		err = fmt.Errorf("agent: read: %w", err)
	}
	c.err = err
	close(c.done)
	for _, cl := range calls {
		c.end(cl, 0, err)
	}
}

// handle delivers one frame. Frames of requests not in flight (abandoned,
// or an earlier client's) are dropped.
func (c *Client) handle(f Frame) {
	c.mu.Lock()
	cl := c.calls[f.ID]
	c.mu.Unlock()
	if cl == nil {
		return
	}
	switch f.Type {
	case TypeStdout, TypeStderr, TypeGetData:
		w := cl.out[f.Type]
		if w == nil {
			c.protocolError(cl, f)
			return
		}
		cl.writing.Lock()
		c.mu.Lock()
		ended := cl.ended
		c.mu.Unlock()
		var err error
		if !ended {
			_, err = w.Write(f.Body)
		}
		cl.writing.Unlock()
		if err != nil {
			c.end(cl, 0, fmt.Errorf("agent %s: write %s: %w", cl.op, f.Type, err))
			// Not from here: a send may wait on the guest, which may be
			// waiting for this loop to read.
			go c.send(cl.id, TypeCancel, nil)
		}
	case TypeAck:
		n, err := ParseAck(f.Body)
		if err != nil || cl.win == nil {
			c.protocolError(cl, f)
			return
		}
		cl.win.release(n)
	case TypeExit:
		x, err := ParseExit(f.Body)
		if err != nil || cl.op != "exec" {
			c.protocolError(cl, f)
			return
		}
		if x.Message != "" {
			c.end(cl, x.Status, &StartError{Status: x.Status, Message: x.Message})
			return
		}
		c.end(cl, x.Status, nil)
	case TypeOK:
		if ParseEmpty(f.Type, f.Body) != nil || cl.op == "exec" {
			c.protocolError(cl, f)
			return
		}
		c.end(cl, 0, nil)
	case TypeError:
		eb, err := ParseError(f.Body)
		if err != nil {
			c.protocolError(cl, f)
			return
		}
		c.end(cl, 0, &RemoteError{Op: cl.op, Code: eb.Code, Message: eb.Message})
	default:
		c.protocolError(cl, f)
	}
}

// protocolError fails a call the guest answered with a frame that does
// not fit it.
func (c *Client) protocolError(cl *call, f Frame) {
	c.end(cl, 0, fmt.Errorf("agent %s: %w: unexpected %s frame of %d bytes", cl.op, ErrMalformed, f.Type, len(f.Body)))
	go c.send(cl.id, TypeCancel, nil)
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
