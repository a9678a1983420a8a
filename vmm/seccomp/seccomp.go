// Package seccomp confines a running VMM to the system calls its run loop
// and devices make once the machine is set up: the ioctls of the run loop
// and devices (ioctl.go lists each request), reads and writes on
// descriptors it already holds, memory and thread management, eventfds and
// epoll, and Unix sockets. Opening files, executing programs, other socket
// families, mounts, ptrace, any other ioctl request and the rest are
// refused with EPERM, so a guest that took over a device emulator could do
// little more than the device could.
//
// The filters (Policy, and IoctlPolicy for ioctl's requests) are built
// with elastic/go-seccomp-bpf and installed on every thread of the process
// at once (SECCOMP_FILTER_FLAG_TSYNC), with no_new_privs set. They cannot
// be removed: install them only in a process that is a VMM from then on.
package seccomp

import (
	"fmt"

	"github.com/elastic/go-seccomp-bpf"
	"golang.org/x/sys/unix"
)

// allowed are the system calls a running vmm makes (found with strace
// over the micro-guest e2e suite: blk, net on a TAP and a switch, console
// ports, the agent bridge, SMP, serial input), plus their close relatives
// the Go runtime and glibc may pick instead.
var allowed = []string{
	// Descriptors the VMM already holds: KVM, disks, TAPs, sockets, eventfds.
	// ioctl only with the requests IoctlPolicy allows.
	"read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev",
	"ioctl", "close", "fcntl", "fstat", "newfstatat", "lseek", "fdatasync", "fsync", "dup", "dup3",
	"eventfd2", "pipe2", "epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_wait", "ppoll", "poll",
	// Removing the agent socket and a run's initramfs at the end.
	"unlinkat",
	// Unix sockets (the agent bridge, the network switch); socket itself
	// is allowed for AF_UNIX only, below.
	"connect", "accept4", "bind", "sendto", "recvfrom", "sendmsg", "recvmsg",
	"getsockopt", "setsockopt", "getsockname", "getpeername", "shutdown",
	// Memory.
	"mmap", "munmap", "mprotect", "madvise", "mremap", "brk",
	// Threads, signals, time: the Go runtime and glibc.
	"futex", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack",
	"tgkill", "getpid", "gettid", "exit", "exit_group", "set_robust_list", "rseq",
	"sched_yield", "sched_getaffinity", "nanosleep", "clock_nanosleep", "clock_gettime",
	"gettimeofday", "restart_syscall", "getrandom", "uname",
	"getuid", "geteuid", "getgid", "getegid",
	// CPU profiling (VMM_CPUPROFILE) arms a timer.
	"timer_create", "timer_settime", "timer_delete", "setitimer",
}

// Count is how many system calls the filters allow (with ioctl, socket and
// clone allowed in part).
func Count() int { return len(allowed) + 2 }

// Policy is the main filter: allowed calls; socket for AF_UNIX only; clone
// for new threads only; clone3 answered ENOSYS so glibc falls back to
// clone, whose flags the filter can check; everything else EPERM.
// IoctlPolicy narrows ioctl. The group with argument conditions comes
// last: when they fail, go-seccomp-bpf leaves the argument where the next
// group would look for the call number (see IoctlPolicy), and last, the
// default comes next.
func Policy() seccomp.Policy {
	return seccomp.Policy{
		DefaultAction: seccomp.ActionErrno,
		Syscalls: []seccomp.SyscallGroup{
			{Action: seccomp.ActionAllow, Names: allowed},
			{Action: seccomp.ActionErrno | seccomp.Action(unix.ENOSYS), Names: []string{"clone3"}},
			{Action: seccomp.ActionAllow, NamesWithCondtions: []seccomp.NameWithConditions{
				{Name: "socket", Conditions: seccomp.ArgumentConditions{
					{Argument: 0, Operation: seccomp.Equal, Value: unix.AF_UNIX}}},
				{Name: "clone", Conditions: seccomp.ArgumentConditions{
					{Argument: 0, Operation: seccomp.BitsSet, Value: unix.CLONE_THREAD}}},
			}},
		},
	}
}

// Install confines every thread of the process to Policy and IoctlPolicy,
// for good. The kernel runs both filters on every call and the stricter
// answer wins.
func Install() error {
	if !seccomp.Supported() {
		return fmt.Errorf("seccomp: this kernel has no seccomp filters: run with --seccomp=off")
	}
	// IoctlPolicy first: Policy refuses seccomp(2) itself.
	for _, p := range []seccomp.Policy{IoctlPolicy(), Policy()} {
		err := seccomp.LoadFilter(seccomp.Filter{
			NoNewPrivs: true,
			Flag:       seccomp.FilterFlagTSync,
			Policy:     p,
		})
		if err != nil {
			return fmt.Errorf("seccomp: install the filter: %w", err)
		}
	}
	return nil
}
