// Package emulate performs, in the VMM, the few instructions a software-only
// KVM (kvm_pvm) cannot emulate but a Linux boot cannot avoid. It is called
// on KVM_EXIT_INTERNAL_ERROR and knows exactly: INT3 and IRETQ in 64-bit
// mode, CLAC and STAC at CPL 0, FWAIT, and LDMXCSR/STMXCSR. Anything else is left unhandled so the run
// ends with the failing bytes printed.
//
// Every value the guest controls (instruction bytes, IDT, GDT, TSS, stack,
// page tables) is checked; where the CPU would raise an exception Step
// returns a *Fault naming it rather than delivering it.
package emulate

import (
	"bytes"
	"fmt"

	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/kvm"
)

// CPU is the vCPU state the emulator reads and writes. *kvm.VCPU satisfies
// it; tests pass recorded states.
type CPU interface {
	GetRegs() (kvm.Regs, error)
	SetRegs(kvm.Regs) error
	GetSregs() (kvm.Sregs, error)
	SetSregs(kvm.Sregs) error
	Translate(linear uint64) (kvm.Translation, error)
	GetFPU() (kvm.FPU, error)
	SetFPU(kvm.FPU) error
}

// Result says what Step did.
type Result struct {
	Handled  bool
	Mnemonic string // "int3", "iretq", "clac", "stac", "fwait"; set when the bytes matched
}

// instruction is one instruction Step knows, by its exact encoding: no
// prefixes other than the REX.W that is part of IRETQ.
type instruction struct {
	mnemonic string
	encoding []byte
	// exec performs it on v; false means the CPU mode is one it does not
	// handle (the instruction is then left to fail as before).
	exec func(v *vcpu) (bool, error)
}

func instructions() []instruction {
	list := []instruction{
		{"int3", []byte{0xCC}, (*vcpu).int3},
		{"iretq", []byte{0x48, 0xCF}, (*vcpu).iretq},
		{"clac", []byte{0x0F, 0x01, 0xCA}, (*vcpu).clac},
		{"stac", []byte{0x0F, 0x01, 0xCB}, (*vcpu).stac},
		{"fwait", []byte{0x9B}, (*vcpu).fwait},
	}
	// LDMXCSR/STMXCSR, with and without a REX prefix.
	list = append(list, instruction{"ldmxcsr/stmxcsr", []byte{0x0F, opcodeGroup15}, (*vcpu).mxcsr})
	for rex := byte(0x40); rex <= 0x4F; rex++ {
		list = append(list, instruction{"ldmxcsr/stmxcsr", []byte{rex, 0x0F, opcodeGroup15}, (*vcpu).mxcsr})
	}
	return list
}

// maxEncoding is the longest encoding in instructions().
const maxEncoding = 3

// Step emulates the instruction at the vCPU's RIP if it is one this package
// knows, leaving the vCPU as the CPU would after executing it. It writes
// guest memory and registers only once every check has passed, so an error
// leaves the vCPU and memory as they were.
func Step(cpu CPU, mem *guestmem.Memory) (Result, error) {
	v, err := load(cpu, mem)
	if err != nil {
		return Result{}, err
	}
	insn, fetchErr := v.fetch(maxEncoding)
	if len(insn) == 0 {
		return Result{}, named("fetch", fetchErr)
	}
	for _, in := range instructions() {
		if !bytes.HasPrefix(insn, in.encoding) {
			if len(insn) < len(in.encoding) && bytes.HasPrefix(in.encoding, insn) && fetchErr != nil {
				return Result{Mnemonic: in.mnemonic}, named(in.mnemonic, fetchErr) // cut short by an unmapped page
			}
			continue
		}
		handled, err := in.exec(v)
		if err != nil || !handled {
			return Result{Mnemonic: in.mnemonic}, err
		}
		if err := v.commit(); err != nil {
			return Result{Mnemonic: in.mnemonic}, err
		}
		return Result{Handled: true, Mnemonic: in.mnemonic}, nil
	}
	return Result{}, nil
}

// vcpu is the state Step works on: a copy of the registers, changed in
// place and written back by commit, and the guest's memory as the vCPU sees
// it through its page tables.
type vcpu struct {
	cpu   CPU
	mem   linear
	regs  kvm.Regs
	sregs kvm.Sregs
	// segmentsChanged says commit must write sregs too.
	segmentsChanged bool
	// pending holds stack writes, done by commit after every check.
	pending []write
}

type write struct {
	spans []span
	data  []byte
}

func load(cpu CPU, mem *guestmem.Memory) (*vcpu, error) {
	regs, err := cpu.GetRegs()
	if err != nil {
		return nil, fmt.Errorf("emulate: %w", err)
	}
	sregs, err := cpu.GetSregs()
	if err != nil {
		return nil, fmt.Errorf("emulate: %w", err)
	}
	return &vcpu{cpu: cpu, mem: linear{cpu: cpu, mem: mem}, regs: regs, sregs: sregs}, nil
}

// fetch reads up to n instruction bytes at RIP, stopping at the first page
// that does not translate; the error says why it stopped short.
func (v *vcpu) fetch(n int) ([]byte, error) {
	addr := v.sregs.CS.Base + v.regs.RIP
	if v.longMode() {
		addr = v.regs.RIP // CS.base is ignored in 64-bit mode
	} else {
		addr = uint64(uint32(addr))
	}
	return v.mem.readPrefix(addr, n)
}

// commit writes what the instruction did back to memory and the vCPU.
func (v *vcpu) commit() error {
	for _, w := range v.pending {
		if err := v.mem.store(w.spans, w.data); err != nil {
			return err
		}
	}
	if err := v.cpu.SetRegs(v.regs); err != nil {
		return fmt.Errorf("emulate: %w", err)
	}
	if v.segmentsChanged {
		if err := v.cpu.SetSregs(v.sregs); err != nil {
			return fmt.Errorf("emulate: %w", err)
		}
	}
	return nil
}

// Control-register and EFER bits Step looks at.
const (
	cr0PE   = 1 << 0
	cr0MP   = 1 << 1
	cr0TS   = 1 << 3
	cr0WP   = 1 << 16
	cr4LA57 = 1 << 12
	eferLMA = 1 << 10
)

// longMode reports 64-bit mode: IA-32e mode (EFER.LMA) with a 64-bit CS.
func (v *vcpu) longMode() bool {
	return v.sregs.EFER&eferLMA != 0 && v.sregs.CS.L != 0
}

// cpl is the current privilege level: the RPL of CS in protected mode
// (SDM vol. 3, 5.5), 3 in virtual-8086 mode, 0 in real mode.
func (v *vcpu) cpl() uint8 {
	switch {
	case v.sregs.CR0&cr0PE == 0:
		return 0
	case v.regs.RFLAGS&flagVM != 0:
		return 3
	}
	return uint8(v.sregs.CS.Selector & selectorRPL)
}

// canonical reports whether addr is canonical for the paging mode: 48-bit
// linear addresses, or 57-bit with CR4.LA57.
func (v *vcpu) canonical(addr uint64) bool {
	bits := uint(48)
	if v.sregs.CR4&cr4LA57 != 0 {
		bits = 57
	}
	return uint64(int64(addr<<(64-bits))>>(64-bits)) == addr
}
