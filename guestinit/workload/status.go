package workload

import (
	"errors"
	"io/fs"
	"os/exec"

	"golang.org/x/sys/unix"
)

// Exit statuses Supervise returns when the workload did not run, as
// docker run's own.
const (
	StatusRunFailed    = 125 // the run could not be set up
	StatusCannotInvoke = 126 // the program exists but cannot be run
	StatusNotFound     = 127 // the program is not there
)

// exitStatus is docker's status for a wait status: the exit code, or
// 128+n for death by signal n.
func exitStatus(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// startStatus is docker's exit status for a workload that could not be
// started, as docker run's CLI maps start errors: 127 when the program is
// not there, 126 when it cannot be run (EACCES, EISDIR), 125 for the rest.
func startStatus(err error) int {
	switch {
	case errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist):
		return StatusNotFound
	case errors.Is(err, unix.EACCES) || errors.Is(err, unix.EISDIR):
		return StatusCannotInvoke
	}
	return StatusRunFailed
}
