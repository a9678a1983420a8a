package net

import (
	"errors"
	"fmt"
)

// Reasons OpenSocket fails, for errors.Is; a *SocketError carries one of
// them and says what a person can do about it.
var (
	ErrNoSwitch         = errors.New("no switch listening")
	ErrNotSwitch        = errors.New("not a switch's datagram socket")
	ErrSocketPermission = errors.New("permission denied")
	ErrSocketPath       = errors.New("invalid socket path")
)

// SocketError is why the switch socket at Path could not be reached. It
// unwraps to Err (one of the sentinels above, or nil for a failure
// without advice) and to Cause, the system call's error.
type SocketError struct {
	Path  string
	Op    string // what failed: "connect", "register", ...
	Err   error
	Cause error
}

func (e *SocketError) Error() string {
	s := fmt.Sprintf("switch socket %s: ", e.Path)
	switch e.Err {
	case ErrNoSwitch:
		return s + "no switch is listening there: start the switch first (vmm lab, or netswitch.New in Go) and check the path"
	case ErrNotSwitch:
		return s + "not a switch's socket (a switch listens on a unix datagram socket): check the path"
	case ErrSocketPermission:
		return s + "permission denied: run as the switch's user, or let this user write the socket and search its directory"
	case ErrSocketPath:
		return fmt.Sprintf("switch socket %q: invalid path: 1 to %d bytes, no NUL", e.Path, maxSocketPath)
	}
	if e.Err != nil {
		return fmt.Sprintf("%s%s: %v: %v", s, e.Op, e.Err, e.Cause)
	}
	return fmt.Sprintf("%s%s: %v", s, e.Op, e.Cause)
}

func (e *SocketError) Unwrap() []error {
	var errs []error
	for _, err := range []error{e.Err, e.Cause} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}
