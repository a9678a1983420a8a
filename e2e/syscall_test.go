package e2e

import (
	"strings"
	"testing"

	"github.com/vmm-dev/vmm/vmm"
	"github.com/vmm-dev/vmm/vmm/doctor"
	"github.com/vmm-dev/vmm/vmtest"
)

// syscallSetup is what the syscall guest prints before it leaves CPL 0.
const syscallSetup = `syscall: gdt\n` +
	`syscall: idt\n` +
	`syscall: user pages\n` +
	`syscall: msrs\n` +
	`syscall: iretq to cpl 3\n`

// syscallHardware is the whole console on a CPU that runs SYSCALL and SYSRET
// (user RFLAGS: IOPL 3 as iretq set it, IF clear; CR0 as the VMM set it).
var syscallHardware = `\A` + syscallSetup +
	`user: cs=0x2b, syscall rax=42\n` +
	`syscall: entered cs=0x8 ss=0x10 rcx=after_syscall1 r11=0x30[0-9a-f]{2} rax=0x2a\n` +
	`syscall: cr0=0x[0-9a-f]+\n` +
	`syscall: lstar=syscall_entry@alias, sysretq\n` +
	`sysret: back in user mode cs=0x2b\n` +
	`user: syscall rax=60\n` +
	`syscall: entered cs=0x8 ss=0x10 rcx=after_syscall2 r11=0x30[0-9a-f]{2} rax=0x3c\n` +
	`syscall: exit, resetting\n\z`

// syscallPVM is the whole console on kvm_pvm, where guest user mode runs
// natively in the host's ring 3, as recorded there with both --compat modes:
//
//   - after iretq to CPL 3, MOV from CS reads the host's user selector 0x33
//     (SS 0x2b), and RFLAGS is the host's user value: IF set, IOPL 0 though
//     iretq popped IOPL 3 (recorded r11=0x246), so user port I/O only works
//     through the TSS I/O bitmap;
//   - SYSCALL jumps to LSTAR with RCX = the next instruction, R11 = the user
//     RFLAGS and SFMASK applied (IF clear in the #GP frame, recorded
//     rflags=0x10097), but stays at CPL 3: syscall_entry still reads CS 0x33,
//     and its MOV from CR0 takes #GP with CS 0x2b, SS 0x23 in the frame
//     (exception delivery itself works, to CPL 0 on RSP0);
//   - SYSRETQ from CPL 0 (the #GP handler) works: user code runs on;
//   - SYSCALL with LSTAR in a page without the U bit, as Linux's entry is,
//     takes #PF at LSTAR with a user-mode error code (P|U): what kills
//     Linux's init at its first system call.
//
// rsp and rflags depend on the build; r11 and rflags are pinned to the bits
// that matter (IOPL 0, IF as recorded, RF in the exception frames).
var syscallPVM = `\A` + syscallSetup +
	`user: cs=0x33, syscall rax=42\n` +
	`syscall: entered cs=0x33 ss=0x2b rcx=after_syscall1 r11=0x2[0-9a-f]{2} rax=0x2a\n` +
	`exception: vector=13 error=0x0 cs=0x2b rip=cr0_probe rflags=0x100[0-9a-f]{2} rsp=0x[0-9a-f]+ ss=0x23 handler-cs=0x8 cr2=0x0\n` +
	`exception: syscall_entry ran at cpl 3; lstar=syscall_entry@alias, sysretq from this handler\n` +
	`sysret: back in user mode cs=0x33\n` +
	`user: syscall rax=60\n` +
	`exception: vector=14 error=0x5 cs=0x2b rip=syscall_entry@alias rflags=0x100[0-9a-f]{2} rsp=0x[0-9a-f]+ ss=0x23 handler-cs=0x8 cr2=syscall_entry@alias\n\z`

// TestSyscall runs the syscall guest, which enters CPL 3 with iretq and
// comes back with SYSCALL and SYSRETQ as Linux does (the first system call
// of init). On a hardware KVM that is the whole round trip; on kvm_pvm it
// pins down what that host does instead (docs/software-kvm.md).
func TestSyscall(t *testing.T) {
	for _, compat := range []string{"software-kvm", "off"} {
		t.Run(compat, func(t *testing.T) {
			cfg := vmtest.Config{Kernel: guest(t, "syscall"), Args: []string{"--compat=" + compat}}
			res := vmtest.Run(t, cfg, guestTimeout)
			t.Logf("console:\n%s", res.Console)
			if res.Code != vmm.StatusGuestOff {
				t.Errorf("exit status %d, want %d; stderr:\n%s", res.Code, vmm.StatusGuestOff, res.Stderr)
			}
			if !doctor.SoftwareKVM() {
				matchAll(t, "console", res.Console, []string{syscallHardware})
				return
			}
			// syscall_entry got past its CR0 read: it ran at CPL 0.
			if strings.Contains(res.Console, "syscall: cr0=") {
				t.Fatalf("SYSCALL now works on this host: update docs/software-kvm.md and the doctor")
			}
			matchAll(t, "console", res.Console, []string{syscallPVM})
		})
	}
}
