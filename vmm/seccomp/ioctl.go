package seccomp

import (
	"slices"

	"github.com/elastic/go-seccomp-bpf"
	"golang.org/x/sys/unix"

	"github.com/vmm-dev/vmm/kvm"
)

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

// IoctlPolicy is the second filter Install loads: ioctl fails with EPERM
// unless its request is one of Ioctls; every other call is left to
// Policy. Each comparison is of the whole 64-bit argument, so a request
// with garbage in its high half (which the kernel would ignore) is
// refused too.
//
// It is a filter of its own rather than conditions inside Policy because
// go-seccomp-bpf leaves the argument in the accumulator when a call's
// conditions do not match, and a later group would compare it as a call
// number: ioctl(fd, 1) would pass as write. Here the conditions (ANDed:
// the request is none of the list) are the filter's only group, and
// falling through them reaches its default, ALLOW.
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
