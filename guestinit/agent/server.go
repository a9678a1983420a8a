package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ServeOptions say how the guest serves requests.
type ServeOptions struct {
	// Root is where programs run, chrooted, as docker exec runs them
	// inside the container, and where file paths resolve, never leaving
	// it. Empty (or "/") is the guest's own root.
	Root string
	// Env is every program's base environment; a request's Env is added
	// to it. PATH is DefaultPath when neither sets it.
	Env []string
	// Dir is the working directory of programs whose request names none;
	// empty is "/".
	Dir string
	// User is who programs run as when the request names nobody; nil is
	// the agent's own user (root in a guest).
	User *syscall.Credential
	// LookupUser resolves a request's User. Nil accepts numeric
	// uid[:gid] only.
	LookupUser func(spec string) (*syscall.Credential, error)
	// Start starts cmd (cmd.Start only: never cmd.Wait) and returns a
	// function that waits for it. guestinit passes one that coordinates
	// with its reaper (workload.Children), which would otherwise take the
	// program's exit status. Nil is cmd.Start and the process's Wait.
	Start func(cmd *exec.Cmd) (wait func() (unix.WaitStatus, error), err error)
	// PowerOff handles a PowerOff request once its OK is written; nil
	// refuses the request. It does not return when it works.
	PowerOff func() error
	// RetryEOF, when not zero, makes an end of file on the stream mean
	// that no host is connected, as a virtio-console port's read says
	// then: Serve cancels the requests in flight (their host is gone),
	// waits this long and reads again, instead of returning.
	RetryEOF time.Duration
	// Logf receives the agent's own diagnostics; nil discards them.
	Logf func(format string, args ...any)
}

// DefaultPath is the PATH of programs whose environment has none, as
// docker's.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Serve serves requests read from rw and writes its replies there, until
// ctx ends or reading fails; at rw's end (without RetryEOF) it returns
// nil. Requests run concurrently, up to MaxRequests, each on a goroutine
// of its own. Before returning, Serve cancels every request (killing its
// program) and waits for them to end. It does not close rw: a Read in
// progress when ctx ends finishes in the background.
//
// A frame whose length prefix is out of range ends Serve with an
// ErrFrameSize error: the stream cannot be followed past it. A malformed
// request is answered with an Error frame and Serve goes on.
func Serve(ctx context.Context, rw io.ReadWriter, opts ServeOptions) error {
	root, err := openFileRoot(opts.Root)
	if err != nil {
		return err
	}
	defer root.close()
	ctx, stop := context.WithCancel(ctx)
	s := &server{opts: opts, t: newStreamTransport(rw, nil), root: root, ctx: ctx, reqs: map[uint32]*request{}}
	defer func() {
		s.mu.Lock()
		s.closed = true // no request starts from here on
		s.mu.Unlock()
		stop()
		s.wg.Wait()
	}()
	read := make(chan error, 1)
	go func() { read <- s.readLoop() }()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case err := <-read:
		return err
	}
}

type server struct {
	opts ServeOptions
	t    *streamTransport
	root *fileRoot
	ctx  context.Context // ends when Serve returns
	wg   sync.WaitGroup  // the requests' goroutines

	mu     sync.Mutex
	reqs   map[uint32]*request
	closed bool
}

// request is one request in flight.
type request struct {
	id     uint32
	typ    Type
	ctx    context.Context
	cancel context.CancelFunc
	in     *inbox // Stdin or PutData; nil when none comes
}

func (s *server) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf("agent: "+format, args...)
	}
}

func (s *server) readLoop() error {
	for {
		p, err := s.t.read()
		if s.ctx.Err() != nil {
			return nil
		}
		switch {
		case err == nil:
			s.dispatch(p)
		case s.opts.RetryEOF > 0 && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)):
			s.cancelAll()
			select {
			case <-s.ctx.Done():
			case <-time.After(s.opts.RetryEOF):
			}
		case errors.Is(err, io.EOF):
			return nil
		default:
			return err
		}
	}
}

// dispatch handles one frame from the host.
func (s *server) dispatch(p []byte) {
	f, err := ParseFrame(p)
	if err != nil {
		s.logf("%v", err)
		return
	}
	switch f.Type {
	case TypeExec, TypePut, TypeGet, TypePowerOff:
		s.start(f)
	case TypeStdin, TypePutData:
		s.data(f)
	case TypeStdinEnd, TypePutEnd:
		if r := s.lookup(f.ID, f.Type); r != nil {
			if err := ParseEmpty(f.Type, f.Body); err != nil {
				s.fail(r, err)
				return
			}
			r.in.end()
		}
	case TypeCancel:
		s.mu.Lock()
		r := s.reqs[f.ID]
		s.mu.Unlock()
		if r != nil {
			r.stop()
		}
	default:
		s.replyError(f.ID, fmt.Errorf("%w: %s is not a frame the host sends", ErrMalformed, f.Type))
	}
}

// start begins a request.
func (s *server) start(f Frame) {
	var run func(*request)
	var in bool
	var err error
	switch f.Type {
	case TypeExec:
		var req ExecRequest
		if req, err = ParseExecRequest(f.Body); err == nil {
			run, in = func(r *request) { s.exec(r, req) }, req.Stdin
		}
	case TypePut:
		var req PutRequest
		if req, err = ParsePutRequest(f.Body); err == nil {
			run, in = func(r *request) { s.put(r, req) }, true
		}
	case TypeGet:
		var p string
		if p, err = ParsePath(f.Body); err == nil {
			run = func(r *request) { s.get(r, p) }
		}
	case TypePowerOff:
		if err = ParseEmpty(f.Type, f.Body); err == nil {
			run = s.powerOff
		}
	}
	if err != nil {
		s.replyError(f.ID, err)
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	r := &request{id: f.ID, typ: f.Type, ctx: ctx, cancel: cancel}
	if in {
		r.in = newInbox()
		// Whatever ends the request wakes its reader of the data.
		context.AfterFunc(ctx, r.in.close)
	}
	s.mu.Lock()
	closed := s.closed
	_, dup := s.reqs[f.ID]
	full := len(s.reqs) >= MaxRequests
	if !closed && !dup && !full {
		s.reqs[f.ID] = r
		s.wg.Add(1)
	}
	s.mu.Unlock()
	switch {
	case closed:
		cancel()
		return
	case dup:
		cancel()
		s.replyError(f.ID, fmt.Errorf("%w: request id %d is in use", ErrBusy, f.ID))
		return
	case full:
		cancel()
		s.replyError(f.ID, fmt.Errorf("%w: %d requests in flight", ErrBusy, MaxRequests))
		return
	}
	go func() {
		defer s.wg.Done()
		defer s.finish(r)
		run(r)
	}()
}

// lookup returns the request a data frame of type t belongs to, or nil
// when it has none (it was abandoned or has ended): such frames are
// dropped.
func (s *server) lookup(id uint32, t Type) *request {
	s.mu.Lock()
	r := s.reqs[id]
	s.mu.Unlock()
	if r == nil {
		return nil
	}
	want := TypeExec
	if t == TypePutData || t == TypePutEnd {
		want = TypePut
	}
	if r.typ != want || r.in == nil {
		s.fail(r, fmt.Errorf("%w: %s frame for a %s request", ErrMalformed, t, r.typ))
		return nil
	}
	return r
}

func (s *server) data(f Frame) {
	r := s.lookup(f.ID, f.Type)
	if r == nil {
		return
	}
	if err := r.in.push(f.Body); err != nil {
		s.fail(r, err)
	}
}

// fail ends a request the host broke the protocol of.
func (s *server) fail(r *request, err error) {
	s.logf("request %d: %v", r.id, err)
	r.stop()
}

func (r *request) stop() { r.cancel() }

// finish forgets a request whose goroutine is done.
func (s *server) finish(r *request) {
	r.stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reqs[r.id] == r {
		delete(s.reqs, r.id)
	}
}

func (s *server) cancelAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.reqs {
		r.stop()
	}
}

// send writes one frame; nothing is written once Serve has returned.
func (s *server) send(id uint32, t Type, body []byte) error {
	if err := s.ctx.Err(); err != nil {
		return err
	}
	p, err := Frame{ID: id, Type: t, Body: body}.Payload()
	if err != nil {
		return err
	}
	return s.t.write(p)
}

func (s *server) replyError(id uint32, err error) {
	if serr := s.send(id, TypeError, ErrorBody{Code: codeOf(err), Message: truncate(err.Error())}.Marshal()); serr != nil {
		s.logf("request %d: reply %v: %v", id, err, serr)
	}
}

func (s *server) ok(r *request) {
	if err := s.send(r.id, TypeOK, nil); err != nil {
		s.logf("request %d: %v", r.id, err)
	}
}

// codeOf classifies err for the host.
func codeOf(err error) Code {
	switch {
	case errors.Is(err, ErrBusy):
		return CodeBusy
	case errors.Is(err, fs.ErrNotExist):
		return CodeNotExist
	case errors.Is(err, fs.ErrPermission):
		return CodePermission
	case errors.Is(err, fs.ErrInvalid), errors.Is(err, ErrMalformed), errors.Is(err, unix.EXDEV), errors.Is(err, unix.ELOOP):
		return CodeInvalid
	}
	return CodeOther
}

// maxMessage bounds an error or exit message, well inside a frame.
const maxMessage = 4 << 10

func truncate(s string) string {
	if len(s) > maxMessage {
		return s[:maxMessage]
	}
	return s
}

func (s *server) powerOff(r *request) {
	if s.opts.PowerOff == nil {
		s.replyError(r.id, errors.New("power-off is not served here"))
		return
	}
	// The OK goes first: once power-off works, nothing more is sent.
	// Writes to a port block until the host has the data.
	s.ok(r)
	if err := s.opts.PowerOff(); err != nil {
		s.logf("power off: %v", err)
	}
}
