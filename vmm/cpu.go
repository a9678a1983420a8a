package vmm

import (
	"fmt"

	"github.com/vmm-dev/vmm/boot"
	"github.com/vmm-dev/vmm/kvm"
)

// CPUID leaves and bits the VMM adjusts per vCPU.
const (
	cpuidLeafFeatures   = 0x1
	cpuidLeafTopology   = 0xB
	cpuidLeafTopologyV2 = 0x1F
	cpuidECXHypervisor  = 1 << 31 // leaf 1 ECX: running under a hypervisor
	cpuidEBXAPICIDShift = 24      // leaf 1 EBX[31:24]: initial APIC ID
	cpuidEBXAPICIDMask  = 0xFF << cpuidEBXAPICIDShift
)

// vcpuCPUID returns the supported CPUID table adjusted for vCPU id: its APIC
// ID, and the hypervisor bit so guests know they are virtualized.
func vcpuCPUID(supported []kvm.CPUIDEntry, id int) []kvm.CPUIDEntry {
	out := make([]kvm.CPUIDEntry, len(supported))
	copy(out, supported)
	for i := range out {
		e := &out[i]
		switch e.Function {
		case cpuidLeafFeatures:
			e.EBX = e.EBX&^cpuidEBXAPICIDMask | uint32(id)<<cpuidEBXAPICIDShift
			e.ECX |= cpuidECXHypervisor
		case cpuidLeafTopology, cpuidLeafTopologyV2:
			e.EDX = uint32(id) // x2APIC ID
		}
	}
	return out
}

// MSRs set at reset, as firmware would leave them.
const (
	msrIA32MiscEnable          = 0x1A0
	msrIA32MiscEnableFastStrng = 1 << 0
)

// x87/SSE reset values (Intel SDM vol. 1, 8.1.5 and 10.2.3).
const (
	fpuControlWordDefault = 0x37F
	mxcsrDefault          = 0x1F80
)

// Local APIC LVT registers and delivery modes (Intel SDM vol. 3, 11.5.1).
const (
	lapicLVTLINT0       = 0x350
	lapicLVTLINT1       = 0x360
	lapicDeliveryMask   = 0x700
	lapicDeliveryExtINT = 0x700
	lapicDeliveryNMI    = 0x400
)

// setupVCPU gives a vCPU its CPUID, MSRs, FPU and local APIC state. New
// then gives the boot processor the boot protocol's entry state
// (setEntryState); the others stay in wait-for-SIPI, as on real hardware,
// until the guest starts them.
func setupVCPU(c *kvm.VCPU, supported []kvm.CPUIDEntry) error {
	if err := c.SetCPUID(vcpuCPUID(supported, c.ID())); err != nil {
		return err
	}
	if err := c.SetMSRs([]kvm.MSREntry{{Index: msrIA32MiscEnable, Data: msrIA32MiscEnableFastStrng}}); err != nil {
		return err
	}
	if err := c.SetFPU(kvm.FPU{FCW: fpuControlWordDefault, MXCSR: mxcsrDefault}); err != nil {
		return err
	}
	return routeLegacyInterrupts(c)
}

// routeLegacyInterrupts makes LINT0 deliver the 8259 PIC's interrupts
// (ExtINT) and LINT1 NMIs, as the MP spec's virtual-wire mode expects, so a
// guest sees the UART's IRQ before it programs the IOAPIC.
func routeLegacyInterrupts(c *kvm.VCPU) error {
	l, err := c.GetLAPIC()
	if err != nil {
		return err
	}
	setLVT := func(reg int, mode uint32) {
		v := uint32(l.Regs[reg]) | uint32(l.Regs[reg+1])<<8 | uint32(l.Regs[reg+2])<<16 | uint32(l.Regs[reg+3])<<24
		v = v&^lapicDeliveryMask | mode
		l.Regs[reg], l.Regs[reg+1], l.Regs[reg+2], l.Regs[reg+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	setLVT(lapicLVTLINT0, lapicDeliveryExtINT)
	setLVT(lapicLVTLINT1, lapicDeliveryNMI)
	return c.SetLAPIC(l)
}

func setEntryState(c *kvm.VCPU, e *boot.EntryState) error {
	s, err := c.GetSregs()
	if err != nil {
		return err
	}
	s.CR0, s.CR3, s.CR4, s.EFER = e.CR0, e.CR3, e.CR4, e.EFER
	s.GDT = kvm.DTable{Base: e.GDTBase, Limit: e.GDTLimit}
	s.IDT = kvm.DTable{}
	s.CS = kvmSegment(e.CS)
	ds := kvmSegment(e.DS)
	s.DS, s.ES, s.FS, s.GS, s.SS = ds, ds, ds, ds, ds
	s.TR = kvmSegment(e.TR)
	s.LDT = kvmSegment(e.LDT)
	if err := c.SetSregs(s); err != nil {
		return err
	}
	return c.SetRegs(kvm.Regs{RIP: e.RIP, RSI: e.RSI, RSP: e.RSP, RFLAGS: e.RFLAGS})
}

func kvmSegment(s boot.Segment) kvm.Segment {
	b := func(v bool) uint8 {
		if v {
			return 1
		}
		return 0
	}
	return kvm.Segment{
		Base: s.Base, Limit: s.Limit, Selector: s.Selector, Type: s.Type,
		Present: b(s.Present), DPL: s.DPL, DB: b(s.DB), S: b(s.S), L: b(s.L), G: b(s.G),
		AVL: b(s.AVL), Unusable: b(s.Unusable),
	}
}

// describeCPU formats a vCPU's registers for a crash report, read on the
// vCPU's own thread after it stopped.
func describeCPU(c *kvm.VCPU) string {
	r, err := c.GetRegs()
	if err != nil {
		return fmt.Sprintf("registers unavailable: %v", err)
	}
	s, err := c.GetSregs()
	if err != nil {
		return fmt.Sprintf("registers unavailable: %v", err)
	}
	return fmt.Sprintf("vCPU %d: rip=%#x rsp=%#x rflags=%#x rax=%#x rbx=%#x rcx=%#x rdx=%#x rsi=%#x rdi=%#x rbp=%#x "+
		"r8=%#x r9=%#x r10=%#x r11=%#x r12=%#x r13=%#x r14=%#x r15=%#x "+
		"cr0=%#x cr2=%#x cr3=%#x cr4=%#x efer=%#x cs=%#x(base %#x, l=%d) ss=%#x idt=%#x/%#x gdt=%#x/%#x",
		c.ID(), r.RIP, r.RSP, r.RFLAGS, r.RAX, r.RBX, r.RCX, r.RDX, r.RSI, r.RDI, r.RBP,
		r.R8, r.R9, r.R10, r.R11, r.R12, r.R13, r.R14, r.R15,
		s.CR0, s.CR2, s.CR3, s.CR4, s.EFER, s.CS.Selector, s.CS.Base, s.CS.L, s.SS.Selector,
		s.IDT.Base, s.IDT.Limit, s.GDT.Base, s.GDT.Limit)
}
