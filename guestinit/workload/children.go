package workload

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Children lets code other than Supervise, such as the guest agent's
// exec, start children of this process and wait for them while PID 1's
// reaper runs. The reaper (Supervise's loop, or Reap) takes every exit
// with wait4(-1), so a plain Wait would race it for the status and could
// lose it. Instead:
//
//   - Start registers the child's pid before the reaper can see its exit:
//     it holds Children's lock from before the fork until the pid is
//     recorded, and the reaper takes that lock to look a pid up.
//   - The wait function waits through the child's pidfd (os.Process.Wait).
//     If it gets the status, the child is forgotten. If the reaper got
//     there first, the wait fails with ECHILD, and the status is in the
//     channel the reaper hands it to.
//
// So a status is never lost whoever reaps first, and the waiter works
// whether or not a reaper runs: before Supervise starts, after it
// returns, and with Reap. Every reaper of the process must be given the
// same Children (Options.Children).
type Children struct {
	mu      sync.Mutex
	waiting map[int]chan unix.WaitStatus // by pid; buffered, one status each
}

// NewChildren returns an empty registry.
func NewChildren() *Children {
	return &Children{waiting: map[int]chan unix.WaitStatus{}}
}

// Start starts cmd (cmd.Start: never call cmd.Wait) and returns the
// function that waits for it and returns its wait status. It has the
// signature of the agent's ServeOptions.Start.
func (c *Children) Start(cmd *exec.Cmd) (wait func() (unix.WaitStatus, error), err error) {
	c.mu.Lock()
	if err := cmd.Start(); err != nil {
		c.mu.Unlock()
		return nil, err
	}
	proc := cmd.Process
	status := make(chan unix.WaitStatus, 1)
	c.waiting[proc.Pid] = status
	c.mu.Unlock()
	return func() (unix.WaitStatus, error) { return c.wait(proc, status) }, nil
}

func (c *Children) wait(proc *os.Process, status chan unix.WaitStatus) (unix.WaitStatus, error) {
	defer proc.Release()
	st, err := proc.Wait()
	if errors.Is(err, syscall.ECHILD) {
		// A reaper took it, and hands the status over.
		return <-status, nil
	}
	c.forget(proc.Pid, status)
	if err != nil {
		return 0, err
	}
	return unix.WaitStatus(st.Sys().(syscall.WaitStatus)), nil
}

// forget drops a pid this waiter reaped itself.
func (c *Children) forget(pid int, status chan unix.WaitStatus) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waiting[pid] == status {
		delete(c.waiting, pid)
	}
}

// exited hands a reaped child's status to its waiter, if Start started
// it; the reaper calls it for every pid it reaps. Nil Children have none.
func (c *Children) exited(pid int, ws unix.WaitStatus) {
	if c == nil {
		return
	}
	c.mu.Lock()
	status := c.waiting[pid]
	delete(c.waiting, pid)
	c.mu.Unlock()
	if status != nil {
		status <- ws // buffered: never blocks
	}
}

// Reap is PID 1's reaper when no Supervise runs (guestinit's agent mode):
// until ctx ends it reaps every child that exits, orphans included, and
// hands the exits of Start's children to their waiters. It must not run
// at the same time as Supervise, which reaps for itself.
func (c *Children) Reap(ctx context.Context) error {
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, unix.SIGCHLD)
	defer signal.Stop(sigs)
	for {
		// A SIGCHLD dropped for a full buffer is covered: every pass
		// reaps all that have exited.
		if _, err := reapAll(-1, c); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sigs:
		}
	}
}
