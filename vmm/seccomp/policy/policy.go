// Package policy is vmm's seccomp policy as go-seccomp-bpf policies: the
// system calls a running VMM may make and the ioctl requests it may
// issue. It is used when the filters are generated (go generate in
// vmm/seccomp) and by tests; the VMM itself loads the generated BPF and
// links none of this.
package policy

import (
	"fmt"
	"slices"

	"github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/vmm-dev/vmm/kvm"
)

// allowed are the system calls a running vmm makes (found with strace
// over the micro-guest e2e suite: blk, net on a TAP and a switch, console
// ports, the agent bridge, SMP, serial input), plus their close relatives
// the Go runtime and glibc may pick instead.
var allowed = []string{
	// Descriptors the VMM already holds: KVM, disks, TAPs, sockets, eventfds.
	// ioctl only with the requests IoctlPolicy allows.
	"read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev",
	// virtio-blk's inline path: RWF_NOWAIT reads and writes.
	"preadv2", "pwritev2",
	"ioctl", "close", "fcntl", "fstat", "newfstatat", "lseek", "fdatasync", "fsync", "dup", "dup3",
	"eventfd2", "pipe2", "epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_wait", "ppoll", "poll",
	// Removing the agent socket and a run's initramfs at the end.
	"unlinkat",
	// Unix sockets (the agent bridge, the network switch); socket itself
	// is allowed for AF_UNIX only, below.
	"connect", "accept4", "bind", "sendto", "recvfrom", "sendmsg", "recvmsg",
	"getsockopt", "setsockopt", "getsockname", "getpeername", "shutdown",
	// Memory; mincore: which pages of a mapped disk are cached
	// (virtio/blk/filemap.go).
	"mmap", "munmap", "mprotect", "madvise", "mremap", "brk", "mincore",
	// Threads, signals, time: the Go runtime and glibc.
	"futex", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack",
	"tgkill", "getpid", "gettid", "exit", "exit_group", "set_robust_list", "rseq",
	"sched_yield", "sched_getaffinity", "nanosleep", "clock_nanosleep", "clock_gettime",
	"gettimeofday", "restart_syscall", "getrandom", "uname",
	"getuid", "geteuid", "getgid", "getegid",
	// CPU profiling (VMM_CPUPROFILE) arms a timer.
	"timer_create", "timer_settime", "timer_delete", "setitimer",
}

// Count is how many system calls the filters allow (with ioctl, socket,
// socketpair and clone allowed in part).
func Count() int { return len(allowed) + 3 }

// Policy is the main filter: allowed calls; socket for AF_UNIX only; clone
// for new threads only; clone3 answered ENOSYS so glibc falls back to
// clone, whose flags the filter can check; everything else EPERM.
// IoctlPolicy narrows ioctl. The group with argument conditions comes
// last: when they fail, go-seccomp-bpf leaves the argument where the next
// group would look for the call number (see IoctlPolicy), and last, the
// default comes next.
//
// Program does not assemble it as it stands: go-seccomp-bpf compares the
// call number with each allowed call in turn, and the kernel, to learn
// which calls the filter always allows, runs the program for every call
// number at install (a walk of up to 70 comparisons each: 0.3 ms of every
// start here). Program looks the allowed calls up by binary search and
// assembles only the rest of Policy (restPolicy).
func Policy() seccomp.Policy {
	p := restPolicy()
	p.Syscalls = append([]seccomp.SyscallGroup{{Action: seccomp.ActionAllow, Names: allowed}}, p.Syscalls...)
	return p
}

// restPolicy is Policy without its group of plainly allowed calls.
func restPolicy() seccomp.Policy {
	return seccomp.Policy{
		DefaultAction: seccomp.ActionErrno,
		Syscalls: []seccomp.SyscallGroup{
			{Action: seccomp.ActionErrno | seccomp.Action(unix.ENOSYS), Names: []string{"clone3"}},
			{Action: seccomp.ActionAllow, NamesWithCondtions: []seccomp.NameWithConditions{
				{Name: "socket", Conditions: seccomp.ArgumentConditions{
					{Argument: 0, Operation: seccomp.Equal, Value: unix.AF_UNIX}}},
				// A switch socket that reconnects makes a new link pair.
				{Name: "socketpair", Conditions: seccomp.ArgumentConditions{
					{Argument: 0, Operation: seccomp.Equal, Value: unix.AF_UNIX}}},
				{Name: "clone", Conditions: seccomp.ArgumentConditions{
					{Argument: 0, Operation: seccomp.BitsSet, Value: unix.CLONE_THREAD}}},
			}},
		},
	}
}

// Ioctl is one ioctl request the filter lets through.
type Ioctl struct {
	Name    string  // the C name
	Request uintptr // the request number (the ioctl's second argument)
	Why     string  // who issues it once the VM runs
}

// ioctls are the requests a running vmm makes (found by following every
// ioctl in kvm/, virtio/net and the terminal code to its callers after
// seccomp.Install in vmm.Machine.Run). Set-up ones (KVM_CREATE_*,
// KVM_SET_USER_MEMORY_REGION, KVM_SET_CPUID2, KVM_SET_MSRS, KVM_*_LAPIC,
// TUNSETIFF, ...) are done by then and are refused. KVM_RUN comes first:
// the filter compares in this order and it is by far the most frequent.
var ioctls = []Ioctl{
	{"KVM_RUN", kvm.KVM_RUN, "the vCPU run loop"},
	{"KVM_IRQ_LINE", kvm.KVM_IRQ_LINE, "the UART's IRQ, the ACPI SCI, PCI INTx"},
	{"KVM_IRQFD", kvm.KVM_IRQFD, "MSI-X routes made when a vector first fires; released at close"},
	{"KVM_SET_GSI_ROUTING", kvm.KVM_SET_GSI_ROUTING, "the guest programs an MSI-X message"},
	{"KVM_SIGNAL_MSI", kvm.KVM_SIGNAL_MSI, "MSI-X when no route is left"},
	{"KVM_IOEVENTFD", kvm.KVM_IOEVENTFD, "the guest moves a virtio BAR; released at close"},
	{"KVM_GET_REGS", kvm.KVM_GET_REGS, "Sample, crash reports, the fallback emulator"},
	{"KVM_SET_REGS", kvm.KVM_SET_REGS, "the fallback emulator"},
	{"KVM_GET_SREGS", kvm.KVM_GET_SREGS, "crash reports, the fallback emulator"},
	{"KVM_SET_SREGS", kvm.KVM_SET_SREGS, "the fallback emulator"},
	{"KVM_GET_FPU", kvm.KVM_GET_FPU, "the fallback emulator (MXCSR, x87)"},
	{"KVM_SET_FPU", kvm.KVM_SET_FPU, "the fallback emulator (MXCSR)"},
	{"KVM_TRANSLATE", kvm.KVM_TRANSLATE, "crash reports, the fallback emulator"},
	{"TUNSETOFFLOAD", unix.TUNSETOFFLOAD, "the guest negotiates virtio-net offloads"},
	{"TCGETS", unix.TCGETS, "is the console a terminal"},
	{"TCSETS", unix.TCSETS, "the console back from raw mode at the end"},
	{"TIOCGWINSZ", unix.TIOCGWINSZ, "vmm run passes a resized terminal on (SIGWINCH)"},
}

// Ioctls returns the ioctl requests the filter allows.
func Ioctls() []Ioctl { return slices.Clone(ioctls) }

// IoctlPolicy is the first half of Program: ioctl fails with EPERM unless
// its request is one of Ioctls; every other call is left to Policy. Each comparison is of the whole 64-bit argument, so a request
// with garbage in its high half (which the kernel would ignore) is
// refused too.
//
// It is a policy of its own rather than conditions inside Policy because
// go-seccomp-bpf leaves the argument in the accumulator when a call's
// conditions do not match, and a later group would compare it as a call
// number: ioctl(fd, 1) would pass as write. Here the conditions (ANDed:
// the request is none of the list) are the policy's only group, and
// falling through them reaches its default, ALLOW, which Program turns
// into a jump to Policy.
func IoctlPolicy() seccomp.Policy {
	none := make(seccomp.ArgumentConditions, 0, len(ioctls))
	for _, io := range ioctls {
		none = append(none, seccomp.Condition{Argument: 1, Operation: seccomp.NotEqual, Value: uint64(io.Request)})
	}
	return seccomp.Policy{
		DefaultAction: seccomp.ActionAllow,
		Syscalls: []seccomp.SyscallGroup{{
			Action:             seccomp.ActionErrno | seccomp.Action(unix.EPERM),
			NamesWithCondtions: []seccomp.NameWithConditions{{Name: "ioctl", Conditions: none}},
		}},
	}
}

// Program assembles the policies into the one BPF program vmm loads:
// IoctlPolicy's, whose every ALLOW becomes a jump to a binary search of
// Policy's allowed calls, which allows a match and jumps to the rest of
// Policy otherwise. A call passes only if both policies would let it, as
// when the kernel runs two stacked filters, but the kernel checks and
// compiles one program, not two (a quarter of a millisecond of every
// start here).
func Program() ([]unix.SockFilter, error) {
	first, err := assemble(IoctlPolicy())
	if err != nil {
		return nil, err
	}
	find, err := lookup(allowed)
	if err != nil {
		return nil, err
	}
	rest, err := assemble(restPolicy())
	if err != nil {
		return nil, err
	}
	return chain(first, append(find, rest...))
}

// chain joins two programs into one that allows a call only if both do:
// the first's every ALLOW becomes a jump to the second.
func chain(first, second []unix.SockFilter) ([]unix.SockFilter, error) {
	const (
		retK  = unix.BPF_RET | unix.BPF_K
		jumpA = unix.BPF_JMP | unix.BPF_JA
	)
	prog := make([]unix.SockFilter, 0, len(first)+len(second))
	for i, f := range first {
		switch {
		case f.Code == retK && f.K == unix.SECCOMP_RET_ALLOW:
			f = unix.SockFilter{Code: jumpA, K: uint32(len(first) - i - 1)}
		case f.Code&0x07 == unix.BPF_RET && f.Code != retK:
			return nil, fmt.Errorf("instruction %d returns a computed action: cannot chain the filters", i)
		}
		prog = append(prog, f)
	}
	prog = append(prog, second...)
	if len(prog) > 4096 {
		return nil, fmt.Errorf("a filter of %d instructions: the kernel takes at most 4096", len(prog))
	}
	return prog, nil
}

// lookup assembles a binary search of the named x86-64 calls: on an x86-64
// call whose number is one of them it returns ALLOW, and otherwise it
// falls through to the instruction after its last. It checks the
// architecture itself; x32 numbers (bit 30 set) match none of the names.
func lookup(names []string) ([]unix.SockFilter, error) {
	nums := make([]uint32, 0, len(names))
	for _, n := range names {
		nr, ok := arch.X86_64.SyscallNames[n]
		if !ok {
			return nil, fmt.Errorf("no x86-64 system call is called %q", n)
		}
		nums = append(nums, uint32(nr))
	}
	slices.Sort(nums)
	nums = slices.Compact(nums)

	// Jump targets are resolved once the layout is known.
	const (
		ldW  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jge  = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
		retK = unix.BPF_RET | unix.BPF_K
	)
	prog := []insn{
		{f: unix.SockFilter{Code: ldW, K: 4}, jt: next, jf: next}, // seccomp_data.arch
		{f: unix.SockFilter{Code: jeq, K: uint32(arch.X86_64.ID)}, jt: next, jf: miss},
		{f: unix.SockFilter{Code: ldW, K: 0}, jt: next, jf: next}, // seccomp_data.nr
	}
	// search emits a subtree for sorted nums: a short run is compared one
	// by one; a longer one splits at its middle number.
	var search func(nums []uint32)
	search = func(nums []uint32) {
		if len(nums) <= 4 {
			for i, nr := range nums {
				fail := next
				if i == len(nums)-1 {
					fail = miss
				}
				prog = append(prog, insn{f: unix.SockFilter{Code: jeq, K: nr}, jt: allow, jf: fail})
			}
			return
		}
		mid := len(nums) / 2
		split := len(prog)
		prog = append(prog, insn{f: unix.SockFilter{Code: jge, K: nums[mid]}, jf: next})
		search(nums[:mid])
		prog[split].jt = len(prog)
		search(nums[mid:])
	}
	search(nums)
	prog = append(prog, insn{f: unix.SockFilter{Code: retK, K: unix.SECCOMP_RET_ALLOW}, jt: next, jf: next})

	out := make([]unix.SockFilter, len(prog))
	for i, in := range prog {
		f := in.f
		if f.Code&0x07 == unix.BPF_JMP {
			var err error
			if f.Jt, err = offset(i, in.jt, len(prog)); err == nil {
				f.Jf, err = offset(i, in.jf, len(prog))
			}
			if err != nil {
				return nil, err
			}
		}
		out[i] = f
	}
	return out, nil
}

// insn is an instruction of lookup's block, its jumps by target.
type insn struct {
	f      unix.SockFilter
	jt, jf int // an instruction's index, or next, allow or miss
}

// Jump targets in lookup's block besides an index.
const (
	next  = -1 // the following instruction
	allow = -2 // the block's last instruction, RET ALLOW
	miss  = -3 // the first instruction after the block
)

// offset is the jump from instruction i to target in a block of n
// instructions.
func offset(i, target, n int) (uint8, error) {
	switch target {
	case next:
		return 0, nil
	case allow:
		target = n - 1
	case miss:
		target = n
	}
	d := target - i - 1
	if d < 0 || d > 255 {
		return 0, fmt.Errorf("a jump of %d instructions from %d: too far for BPF", d, i)
	}
	return uint8(d), nil
}

// assemble turns a policy into BPF.
func assemble(p seccomp.Policy) ([]unix.SockFilter, error) {
	insns, err := p.Assemble()
	if err != nil {
		return nil, err
	}
	raw, err := bpf.Assemble(insns)
	if err != nil {
		return nil, err
	}
	prog := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		prog[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return prog, nil
}
