// Package seccomp confines a running VMM to the system calls its run loop
// and devices make once the machine is set up: the ioctls of the run loop
// and devices (policy.Ioctls lists each request), reads and writes on
// descriptors it already holds, memory and thread management, eventfds and
// epoll, and Unix sockets. Opening files, executing programs, other socket
// families, mounts, ptrace, any other ioctl request and the rest are
// refused with EPERM, so a guest that took over a device emulator could do
// little more than the device could.
//
// The filter is written as go-seccomp-bpf policies in package policy and
// assembled ahead of time into filters.go (go generate), so the VMM loads
// ready BPF: assembling it at start-up cost a third of a millisecond and
// the library's syscall tables 160 KB of heap in every VM process. The
// allowed calls are found by binary search rather than compared in turn:
// installing a filter, the kernel runs it for every call number, and the
// linear form cost 0.28 ms of each start (0.17 ms now). It is
// installed on every thread of the process at once
// (SECCOMP_FILTER_FLAG_TSYNC), with no_new_privs set, and cannot be
// removed: install it only in a process that is a VMM from then on.
package seccomp

//go:generate go run ./gen -o filters.go

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Install confines every thread of the process to the filter, for good.
func Install() error {
	if _, err := unix.PrctlRetInt(unix.PR_GET_SECCOMP, 0, 0, 0, 0); errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("seccomp: this kernel has no seccomp filters: run with --seccomp=off")
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("seccomp: set no_new_privs: %w", err)
	}
	if err := loadFilter(program); err != nil {
		return fmt.Errorf("seccomp: install the filter: %w", err)
	}
	return nil
}
