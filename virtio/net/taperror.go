package net

import (
	"errors"
	"fmt"
)

// Reasons OpenTAP fails, for errors.Is; a *TAPError carries one of them
// and says what a person can do about it.
var (
	ErrTUNMissing    = errors.New("/dev/net/tun is missing")
	ErrTAPPermission = errors.New("permission denied")
	ErrTAPBusy       = errors.New("in use by another process")
	ErrTAPName       = errors.New("invalid interface name")
	ErrNotTAP        = errors.New("an interface of that name exists and is not a single-queue TAP")
)

// TAPError is why the TAP called Name could not be opened or set up. It
// unwraps to Err (one of the sentinels above, or nil for a failure
// without advice) and to Cause, the system call's error.
type TAPError struct {
	Name  string
	Op    string // what failed: "open /dev/net/tun", "TUNSETIFF", ...
	Err   error
	Cause error
}

func (e *TAPError) Error() string {
	s := fmt.Sprintf("TAP %s: ", e.Name)
	switch e.Err {
	case ErrTUNMissing:
		return s + "/dev/net/tun is missing: load the tun module (modprobe tun)"
	case ErrTAPPermission:
		return s + fmt.Sprintf("permission denied: run as root or create it with `ip tuntap add %s mode tap user $USER`", e.Name)
	case ErrTAPBusy:
		return s + "in use by another process (a TAP takes one reader)"
	case ErrTAPName:
		return fmt.Sprintf("TAP %q: invalid interface name: 1 to 15 bytes, none of them '/', ':', space or NUL", e.Name)
	case ErrNotTAP:
		return s + "an interface of that name exists and is not a single-queue TAP device: pick another name or delete it"
	}
	if e.Err != nil {
		return fmt.Sprintf("%s%s: %v: %v", s, e.Op, e.Err, e.Cause)
	}
	return fmt.Sprintf("%s%s: %v", s, e.Op, e.Cause)
}

func (e *TAPError) Unwrap() []error {
	var errs []error
	for _, err := range []error{e.Err, e.Cause} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}
