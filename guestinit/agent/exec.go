package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmm-dev/vmm/guestinit/workload"
)

// Exit statuses of a program that did not start, as docker exec's.
const (
	StatusCannotInvoke = 126
	StatusNotFound     = 127
)

// outputGrace is how long a program's output is still read after it
// exited: a background process it left holding stdout would otherwise
// keep the request open for as long as it lives. What such a process
// writes later is lost (it gets EPIPE), as over ssh once the session
// closes.
const outputGrace = time.Second

// exec runs a program for r and reports its output and exit.
func (s *server) exec(r *request, req ExecRequest) {
	p, err := s.startProgram(r, req)
	if err != nil {
		x := Exit{Status: startStatus(err), Message: truncate(err.Error())}
		if err := s.send(r.id, TypeExit, x.Marshal()); err != nil {
			s.logf("request %d: %v", r.id, err)
		}
		return
	}
	status := p.finish(s, r)
	if err := s.send(r.id, TypeExit, Exit{Status: status}.Marshal()); err != nil {
		s.logf("request %d: %v", r.id, err)
	}
}

// program is a started program and the host ends of its pipes.
type program struct {
	pid            int
	wait           func() (unix.WaitStatus, error)
	stdin          *os.File // nil without stdin
	stdout, stderr *os.File
}

// startProgram starts req's program.
func (s *server) startProgram(r *request, req ExecRequest) (*program, error) {
	if len(req.Argv) == 0 {
		return nil, &exec.Error{Name: "", Err: errors.New("no command given")}
	}
	env := append(append([]string{}, s.opts.Env...), req.Env...)
	pathList, ok := lookupEnv(env, "PATH")
	if !ok {
		pathList = DefaultPath
		env = append(env, "PATH="+DefaultPath)
	}
	dir := req.Dir
	if dir == "" {
		dir = s.opts.Dir
	}
	if dir == "" {
		dir = "/"
	}
	dir = path.Clean("/" + dir)
	if err := s.root.isDir(dir); err != nil {
		return nil, err
	}
	prog, err := s.lookPath(dir, req.Argv[0], pathList)
	if err != nil {
		return nil, err
	}
	cred, err := s.credential(req.User)
	if err != nil {
		return nil, err
	}
	cmd := &exec.Cmd{
		Path: prog,
		Args: req.Argv,
		Env:  env,
		Dir:  dir,
		SysProcAttr: &syscall.SysProcAttr{
			Chroot:     s.root.chroot(),
			Credential: cred,
			// A session of its own: Cancel kills its whole process
			// group, and it never shares guestinit's terminal.
			Setsid: true,
		},
	}
	p := &program{}
	var stdinR, outW, errW *os.File // the program's ends, closed here once it runs
	defer func() {
		for _, f := range []*os.File{stdinR, outW, errW} {
			if f != nil {
				f.Close()
			}
		}
	}()
	if req.Stdin {
		if stdinR, p.stdin, err = os.Pipe(); err != nil {
			return nil, err
		}
		cmd.Stdin = stdinR // only when set: a nil *os.File would not be nil to exec
	}
	if p.stdout, outW, err = os.Pipe(); err != nil {
		p.closeAll()
		return nil, err
	}
	if p.stderr, errW, err = os.Pipe(); err != nil {
		p.closeAll()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	start := s.opts.Start
	if start == nil {
		start = startAndWait
	}
	if p.wait, err = start(cmd); err != nil {
		p.closeAll()
		return nil, err
	}
	p.pid = cmd.Process.Pid
	return p, nil
}

func (p *program) closeAll() {
	for _, f := range []*os.File{p.stdin, p.stdout, p.stderr} {
		if f != nil {
			f.Close()
		}
	}
}

// finish feeds the program, relays its output until it exits and
// returns its status. Cancelling r kills its process group.
func (p *program) finish(s *server, r *request) int {
	var wg sync.WaitGroup
	if p.stdin != nil {
		wg.Add(1)
		go func() { defer wg.Done(); s.feed(r, p.stdin) }()
	}
	var out sync.WaitGroup
	for t, f := range map[Type]*os.File{TypeStdout: p.stdout, TypeStderr: p.stderr} {
		out.Add(1)
		go func() { defer out.Done(); s.relay(r, t, f) }()
	}
	exited := make(chan struct{})
	go func() {
		select {
		case <-r.ctx.Done():
			// Its own session, so its group id is its pid.
			unix.Kill(-p.pid, unix.SIGKILL)
		case <-exited:
		}
	}()
	ws, err := p.wait()
	close(exited)
	status := exitStatus(ws)
	if err != nil {
		s.logf("request %d: wait for pid %d: %v", r.id, p.pid, err)
		status = StatusCannotInvoke
	}
	// Unblocks a write the program will never read.
	if p.stdin != nil {
		p.stdin.Close()
	}
	if r.in != nil {
		r.in.close()
	}
	p.stdout.SetReadDeadline(time.Now().Add(outputGrace))
	p.stderr.SetReadDeadline(time.Now().Add(outputGrace))
	out.Wait()
	wg.Wait()
	p.stdout.Close()
	p.stderr.Close()
	return status
}

// feed copies the request's Stdin frames to the program and acknowledges
// them. Once the program stops reading (EPIPE) the rest is acknowledged
// and dropped, so the host never stalls on it.
func (s *server) feed(r *request, w *os.File) {
	defer w.Close()
	broken := false
	for {
		chunk, done := r.in.take()
		if done {
			return
		}
		if !broken {
			if _, err := w.Write(chunk); err != nil {
				broken = true
			}
		}
		r.in.consumed(len(chunk))
		if err := s.send(r.id, TypeAck, MarshalAck(uint32(len(chunk)))); err != nil {
			return
		}
	}
}

// relay sends what the program writes on f as frames of type t.
func (s *server) relay(r *request, t Type, f *os.File) {
	buf := make([]byte, MaxData)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if serr := s.send(r.id, t, buf[:n]); serr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// startAndWait is ServeOptions.Start's default.
func startAndWait(cmd *exec.Cmd) (func() (unix.WaitStatus, error), error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return func() (unix.WaitStatus, error) {
		st, err := cmd.Process.Wait()
		if err != nil {
			return 0, err
		}
		return unix.WaitStatus(st.Sys().(syscall.WaitStatus)), nil
	}, nil
}

// exitStatus is docker's status for a wait status: the exit code, or
// 128+n for death by signal n.
func exitStatus(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// startStatus is docker exec's status for a program that did not start:
// 127 when it is not there, 126 when it cannot run.
func startStatus(err error) int {
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) && !isChdir(err) {
		return StatusNotFound
	}
	return StatusCannotInvoke
}

func isChdir(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && pe.Op == "chdir"
}

// lookPath finds file as execvp(3) does (workload.LookPathFunc), inside
// the root as the program will see it.
func (s *server) lookPath(dir, file, pathList string) (string, error) {
	return workload.LookPathFunc(dir, file, pathList, func(candidate string) bool {
		name, err := cleanPath(candidate)
		if err != nil {
			return false
		}
		st, err := s.root.stat(name)
		return err == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Mode&0o111 != 0
	})
}

// credential resolves a request's user.
func (s *server) credential(spec string) (*syscall.Credential, error) {
	if spec == "" {
		return s.opts.User, nil
	}
	if s.opts.LookupUser != nil {
		return s.opts.LookupUser(spec)
	}
	u, g, hasGroup := strings.Cut(spec, ":")
	uid, err := parseID(u)
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", spec, err)
	}
	gid := uint32(0)
	if hasGroup {
		if gid, err = parseID(g); err != nil {
			return nil, fmt.Errorf("user %q: %w", spec, err)
		}
	}
	return &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{gid}}, nil
}

var errUserName = errors.New("only numeric uid[:gid] is known here")

func parseID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, errUserName
	}
	if n > math.MaxInt32 {
		return 0, fmt.Errorf("id %d out of range", n)
	}
	return uint32(n), nil
}

// lookupEnv returns the last value of key in env, as exec dedupes it.
func lookupEnv(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}
