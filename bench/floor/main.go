// Command floor is the start-up floor the bench measures vmm against: a Go
// program that makes only the KVM calls every VMM makes before a guest's
// first instruction, and nothing else. It opens /dev/kvm, fetches the
// supported CPUID table on a goroutine while it creates the VM (as vmm
// does), maps and registers the guest's RAM, creates the irqchip, the PIT
// and one vCPU, gives the vCPU its CPUID and real-mode entry registers,
// and enters the guest once. The guest's first instruction writes to a
// port, which ends the run.
//
// With VMM_TRACE_STARTUP set it prints vmm's start-up trace lines for main
// and first-kvm-run (internal/startuptrace), which the bench reads.
//
//	floor [MEMORY_MIB]
package main

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/vmm-dev/vmm/internal/startuptrace"
	"github.com/vmm-dev/vmm/kvm"
)

// The guest: out 0x80, al; hlt, at guestEntry in real mode.
var guestCode = []byte{0xE6, 0x80, 0xF4}

const (
	guestEntry = 0x1000
	tssAddr    = 0xFFFB_D000 // as vmm places it, in the MMIO hole
)

func main() {
	startuptrace.Mark("main")
	memMiB := 128
	if len(os.Args) > 1 {
		n, err := strconv.Atoi(os.Args[1])
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "floor: memory %q: give a size in MiB\n", os.Args[1])
			os.Exit(2)
		}
		memMiB = n
	}
	if err := run(uint64(memMiB) << 20); err != nil {
		fmt.Fprintf(os.Stderr, "floor: %v\n", err)
		os.Exit(1)
	}
	startuptrace.Print(os.Stderr)
}

func run(memBytes uint64) error {
	sys, err := kvm.Open()
	if err != nil {
		return err
	}
	type cpuidResult struct {
		entries []kvm.CPUIDEntry
		err     error
	}
	fetched := make(chan cpuidResult, 1)
	go func() {
		e, err := sys.SupportedCPUID()
		fetched <- cpuidResult{e, err}
	}()
	vm, err := sys.CreateVM()
	if err != nil {
		return err
	}
	mem, err := unix.Mmap(-1, 0, int(memBytes), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return fmt.Errorf("map guest memory: %w", err)
	}
	copy(mem[guestEntry:], guestCode)
	if err := vm.SetUserMemoryRegion(kvm.UserspaceMemoryRegion{
		MemorySize: memBytes, UserspaceAddr: hostAddr(mem),
	}); err != nil {
		return err
	}
	if err := vm.SetTSSAddr(tssAddr); err != nil {
		return err
	}
	if err := vm.CreateIRQChip(); err != nil {
		return err
	}
	if err := vm.CreatePIT2(); err != nil {
		return err
	}
	vcpu, err := vm.CreateVCPU(0)
	if err != nil {
		return err
	}
	c := <-fetched
	if c.err != nil {
		return c.err
	}
	if err := vcpu.SetCPUID(c.entries); err != nil {
		return err
	}
	s, err := vcpu.GetSregs()
	if err != nil {
		return err
	}
	s.CS.Base, s.CS.Selector = 0, 0
	if err := vcpu.SetSregs(s); err != nil {
		return err
	}
	if err := vcpu.SetRegs(kvm.Regs{RIP: guestEntry, RFLAGS: 2}); err != nil {
		return err
	}
	startuptrace.Mark("first-kvm-run")
	exit, err := vcpu.Run()
	if err != nil {
		return err
	}
	if exit.Reason != kvm.KVM_EXIT_IO || exit.IO.Port != 0x80 {
		return fmt.Errorf("the guest's first exit was %v (port %#x), want its write to port 0x80", exit.Reason, exit.IO.Port)
	}
	return nil
}
