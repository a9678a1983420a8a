package workload

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrNotPID1 is returned when Options.KillOthers is asked of a process
// that is not PID 1: kill(-1) anywhere else reaches processes outside the
// machine or namespace.
var ErrNotPID1 = errors.New("killing every other process is for PID 1 only")

// Stdio is the workload's standard streams. They are files, not
// io.Writers, so the workload gets the descriptors themselves: its output
// is byte-exact, and nothing is left to copy after it exits. A nil file
// is /dev/null.
type Stdio struct {
	Stdin, Stdout, Stderr *os.File
}

// Options are how Supervise runs, as opposed to what (the Spec).
type Options struct {
	// Chroot is the directory the workload sees as /. Empty means the
	// supervisor's own root: in a guest, guestinit has switched into the
	// image already.
	Chroot string
	// KillOthers ends the run the way a PID namespace ends when its init
	// exits: once the workload has exited, every other process is killed
	// and reaped before Supervise returns. For PID 1 only.
	KillOthers bool
	// Signals are signals for the workload from elsewhere than this
	// process's own signal handlers, such as the host's control messages:
	// SIGKILL or SIGSTOP, which no process can catch to forward, come this
	// way. One sent before the workload starts is delivered once it runs.
	// Nil means none.
	Signals <-chan os.Signal `json:"-"`
	// Children are this process's other children, started and waited
	// for by others (the guest agent's exec): Supervise hands their exits
	// to their waiters instead of dropping them as orphans'. Nil means
	// none.
	Children *Children `json:"-"`
}

// StartError is Supervise's error when the workload could not be started:
// nothing ran, and the status says why, as docker's does.
type StartError struct {
	Spec Spec
	Err  error
}

func (e *StartError) Error() string { return fmt.Sprintf("start %s: %v", e.Spec, e.Err) }
func (e *StartError) Unwrap() error { return e.Err }

// Forwarded are the signals Supervise passes on to the workload: those a
// person or `docker stop`/`docker kill` sends, and window-size changes.
func Forwarded() []os.Signal {
	return []os.Signal{
		unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT,
		unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH,
	}
}

// Supervise runs spec and does PID 1's work until it exits: it reaps
// every child of this process that exits, the workload's orphans included
// (they are reparented here when this is PID 1 or a child subreaper), and
// forwards Forwarded signals to the workload. It returns the workload's
// exit status as docker reports it: its exit code, or 128+n when signal n
// killed it. The workload is not PID 1, so a signal it does not handle
// acts as it would on any process (SIGTERM ends it with 143), as under
// docker run --init.
//
// Supervise owns all waiting for children while it runs: nothing else in
// the process may wait for one (os/exec's Wait included), or it could take
// the workload's status, except through Options.Children. Only one
// Supervise may run at a time.
//
// On error the status is StatusNotFound or StatusCannotInvoke when the
// program could not be started, as docker's, and StatusRunFailed otherwise.
// An error from starting it is a *StartError.
func Supervise(spec Spec, stdio Stdio, opts Options) (int, error) {
	if opts.KillOthers && unix.Getpid() != 1 {
		return StatusRunFailed, ErrNotPID1
	}
	// Asked for before the workload starts, so an exit or a signal that
	// comes before the loop runs is queued, not lost. signal.Notify never
	// blocks: if the buffer fills a SIGCHLD may be dropped, but the loop
	// reaps after every signal it takes, so it still sees every exit.
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, append(Forwarded(), unix.SIGCHLD)...)
	defer signal.Stop(sigs)

	proc, err := start(spec, stdio, opts.Chroot)
	if err != nil {
		return startStatus(err), &StartError{Spec: spec, Err: err}
	}
	defer proc.Release()
	status, err := waitWorkload(proc, sigs, opts.Signals, opts.Children)
	if err != nil {
		return StatusRunFailed, err
	}
	if opts.KillOthers {
		err = killOthers(sigs, opts.Children)
	}
	return status, err
}

// start starts spec. It looks argv[0] up itself, inside the root, with the
// workload's PATH: exec.Command would search the supervisor's.
func start(spec Spec, stdio Stdio, chroot string) (*os.Process, error) {
	if len(spec.Argv) == 0 {
		return nil, ErrNoCommand
	}
	if spec.TTY && stdio.Stdin == nil {
		return nil, errors.New("a TTY workload needs its terminal as stdin")
	}
	root := chroot
	if root == "" {
		root = "/"
	}
	if err := makeWorkdir(root, spec.Dir); err != nil {
		return nil, err
	}
	prog, err := LookPath(root, spec.Dir, spec.Argv[0], envValue(spec.Env, "PATH"))
	if err != nil {
		return nil, err
	}
	cmd := &exec.Cmd{
		Path: prog,
		Args: spec.Argv,
		Env:  append([]string{}, spec.Env...), // never nil: nil means the supervisor's
		Dir:  spec.Dir,
		SysProcAttr: &syscall.SysProcAttr{
			Chroot: chroot,
			Credential: &syscall.Credential{
				Uid: spec.UID, Gid: spec.GID, Groups: append([]uint32{}, spec.Groups...),
			},
			// Its own session and process group, so the terminal's job
			// control and a group kill reach it and not guestinit.
			Setsid: true,
		},
	}
	// Assigned only when set: a nil *os.File in the interface would not
	// be nil to exec, which would start the workload with the fd closed.
	if stdio.Stdin != nil && (spec.OpenStdin || spec.TTY) {
		cmd.Stdin = stdio.Stdin
	}
	if stdio.Stdout != nil {
		cmd.Stdout = stdio.Stdout
	}
	if stdio.Stderr != nil {
		cmd.Stderr = stdio.Stderr
	}
	if spec.TTY {
		cmd.SysProcAttr.Setctty = true
		cmd.SysProcAttr.Ctty = 0 // the child's stdin
	}
	// Only Start: the reaping loop collects the exit, never cmd.Wait.
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return cmd.Process, nil
}
