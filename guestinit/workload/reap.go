package workload

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// ErrStatusLost is returned when something other than Supervise reaped
// the workload, so its exit status is gone: the classic PID 1 bug of two
// waiters.
var ErrStatusLost = errors.New("the workload was reaped elsewhere; its exit status is lost")

// killTimeout bounds the wait for killed processes to be reaped. SIGKILL
// cannot be caught, but a process in uninterruptible sleep (a hung NFS or
// FUSE request) dies only when that ends.
const killTimeout = 5 * time.Second

// reaped is what one pass of reapAll found.
type reaped struct {
	status     int  // the workload's exit status, when exited
	exited     bool // the workload was among the children reaped
	noChildren bool // no children are left
}

// reapAll reaps every child that has exited, without blocking. One
// wait4(-1) loop reaps all of them, the workload included, so no other
// waiter can race it for the workload's status; the exits of children
// started through children go to their waiters.
func reapAll(workload int, children *Children) (reaped, error) {
	var r reaped
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.ECHILD:
			r.noChildren = true
			return r, nil
		case err != nil:
			return r, fmt.Errorf("wait4: %w", err)
		case pid == 0:
			return r, nil
		case pid == workload:
			r.status, r.exited = exitStatus(ws), true
		default:
			children.exited(pid, ws)
		}
	}
}

// waitWorkload reaps children and forwards signals, those this process
// receives (sigs) and those sent to it (extra), until the workload has
// exited, and returns its status.
func waitWorkload(proc *os.Process, sigs, extra <-chan os.Signal, children *Children) (int, error) {
	for {
		r, err := reapAll(proc.Pid, children)
		if err != nil {
			return 0, err
		}
		if r.exited {
			return r.status, nil
		}
		if r.noChildren {
			return 0, ErrStatusLost
		}
		var sig os.Signal
		select {
		case sig = <-sigs:
			if sig == unix.SIGCHLD {
				continue
			}
		case s, ok := <-extra:
			if !ok {
				extra = nil // closed: nothing more comes that way
				continue
			}
			sig = s // even SIGCHLD: whoever sent it meant the workload
		}
		// Not reaped yet, so the pid is still the workload's (a zombie at
		// worst); os.Process also signals through a pidfd where it can.
		if err := proc.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return 0, fmt.Errorf("forward %v: %w", sig, err)
		}
	}
}

// killOthers kills every process but this one, as the kernel does to a
// PID namespace whose init exits, and reaps them all.
func killOthers(sigs <-chan os.Signal, children *Children) error {
	if err := unix.Kill(-1, unix.SIGKILL); err != nil && err != unix.ESRCH {
		return fmt.Errorf("kill every other process: %w", err)
	}
	deadline := time.NewTimer(killTimeout)
	defer deadline.Stop()
	for {
		r, err := reapAll(-1, children)
		if err != nil || r.noChildren {
			return err
		}
		select {
		case <-sigs:
		case <-deadline.C:
			return fmt.Errorf("processes left %v after SIGKILL", killTimeout)
		}
	}
}
