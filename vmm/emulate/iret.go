package emulate

import (
	"encoding/binary"

	"github.com/vmm-dev/vmm/kvm"
)

// iretq returns from an interrupt in 64-bit mode (SDM vol. 2, IRET/IRETD/
// IRETQ pseudo-code, IA-32E-MODE-RETURN): it pops RIP, CS, RFLAGS, RSP and
// SS, to the same or an outer privilege level, into 64-bit or
// compatibility mode.
func (v *vcpu) iretq() (bool, error) {
	if !v.longMode() {
		return false, nil
	}
	return true, named("iretq", v.interruptReturn())
}

func (v *vcpu) interruptReturn() error {
	if v.regs.RFLAGS&flagNT != 0 {
		return faultf(VectorGP, "RFLAGS.NT is set: task return in IA-32e mode")
	}
	if !v.canonical(v.regs.RSP) {
		return faultf(VectorSS, "stack %#x is not canonical", v.regs.RSP)
	}
	b, err := v.mem.read(v.regs.RSP, 5*8)
	if err != nil {
		return err
	}
	pop := func(i int) uint64 { return binary.LittleEndian.Uint64(b[8*i:]) }
	rip, csSel, rflags, rsp, ssSel := pop(0), uint16(pop(1)), pop(2), pop(3), uint16(pop(4))

	cpl := v.cpl()
	cs, err := v.returnCode(csSel, cpl)
	if err != nil {
		return err
	}
	newCPL := uint8(csSel & selectorRPL)
	if cs.L != 0 && !v.canonical(rip) {
		return faultf(VectorGP, "return RIP %#x is not canonical", rip)
	}
	if cs.L == 0 && rip > uint64(cs.Limit) {
		return faultf(VectorGP, "return EIP %#x is past the limit %#x of CS %#x", rip, cs.Limit, csSel)
	}
	ss, err := v.returnStack(ssSel, newCPL, cs.L != 0)
	if err != nil {
		return err
	}

	v.regs.RFLAGS = returnFlags(v.regs.RFLAGS, rflags, cpl)
	v.regs.RIP = rip
	v.regs.RSP = rsp
	v.sregs.CS = cs
	v.sregs.SS = ss
	if newCPL > cpl {
		v.dropInnerDataSegments(newCPL)
	}
	v.segmentsChanged = true
	return nil
}

// returnCode loads the return CS: present code whose RPL is no lower than
// the CPL, with DPL equal to the RPL (or, conforming, no higher), 64-bit or
// 32-bit compatibility-mode code.
func (v *vcpu) returnCode(sel uint16, cpl uint8) (kvm.Segment, error) {
	cs, err := v.descriptor(sel)
	if err != nil {
		return cs, err
	}
	rpl := uint8(sel & selectorRPL)
	switch {
	case rpl < cpl:
		return cs, faultf(VectorGP, "return CS %#x has RPL %d, below CPL %d", sel, rpl, cpl)
	case cs.S == 0 || cs.Type&typeCode == 0:
		return cs, faultf(VectorGP, "return CS %#x is not a code segment", sel)
	case cs.Type&typeConforming == 0 && cs.DPL != rpl:
		return cs, faultf(VectorGP, "return CS %#x has DPL %d, not its RPL %d", sel, cs.DPL, rpl)
	case cs.Type&typeConforming != 0 && cs.DPL > rpl:
		return cs, faultf(VectorGP, "conforming return CS %#x has DPL %d, above its RPL %d", sel, cs.DPL, rpl)
	case cs.Present == 0:
		return cs, faultf(VectorNP, "return CS %#x is not present", sel)
	case cs.L != 0 && cs.DB != 0:
		return cs, faultf(VectorGP, "return CS %#x has both L and D set", sel)
	case cs.L == 0 && cs.DB == 0:
		return cs, faultf(VectorGP, "return CS %#x is 16-bit code, which this emulator does not return to", sel)
	}
	return cs, nil
}

// returnStack loads the return SS: a null selector only for 64-bit code
// below CPL 3, otherwise present writable data at the new CPL.
func (v *vcpu) returnStack(sel uint16, cpl uint8, to64 bool) (kvm.Segment, error) {
	if rpl := uint8(sel & selectorRPL); rpl != cpl {
		return kvm.Segment{}, faultf(VectorGP, "return SS %#x has RPL %d, not the new CPL %d", sel, rpl, cpl)
	}
	if sel&selectorIndex == 0 && sel&selectorTI == 0 {
		if cpl == 3 || !to64 {
			return kvm.Segment{}, faultf(VectorGP, "null return SS at CPL %d or outside 64-bit mode", cpl)
		}
		return nullStack(cpl), nil
	}
	ss, err := v.descriptor(sel)
	if err != nil {
		return ss, err
	}
	switch {
	case ss.S == 0 || ss.Type&typeCode != 0 || ss.Type&typeWritable == 0:
		return ss, faultf(VectorGP, "return SS %#x is not a writable data segment", sel)
	case ss.DPL != cpl:
		return ss, faultf(VectorGP, "return SS %#x has DPL %d, not the new CPL %d", sel, ss.DPL, cpl)
	case ss.Present == 0:
		return ss, faultf(VectorSS, "return SS %#x is not present", sel)
	}
	return ss, nil
}

// returnFlags is RFLAGS after IRETQ at CPL cpl: the popped value where the
// CPL allows each bit to change, the current one elsewhere; VM clear, the
// fixed bit set, reserved bits clear.
func returnFlags(cur, popped uint64, cpl uint8) uint64 {
	mask := uint64(flagCF | flagPF | flagAF | flagZF | flagSF | flagTF | flagDF | flagOF | flagNT | flagRF | flagAC | flagID)
	if uint64(cpl) <= cur&flagIOPL>>iopShift {
		mask |= flagIF
	}
	if cpl == 0 {
		mask |= flagIOPL | flagVIF | flagVIP
	}
	return (cur&^mask|popped&mask)&^flagVM | flagFixed
}

// dropInnerDataSegments nulls DS, ES, FS and GS where they hold data or
// non-conforming code more privileged than the new CPL, as IRET does on a
// return to an outer level. The FS and GS bases, which 64-bit code keeps in
// MSRs, are left.
func (v *vcpu) dropInnerDataSegments(cpl uint8) {
	for _, s := range []*kvm.Segment{&v.sregs.DS, &v.sregs.ES, &v.sregs.FS, &v.sregs.GS} {
		if s.Unusable != 0 || s.Selector&selectorIndex == 0 && s.Selector&selectorTI == 0 {
			continue
		}
		dataOrNonConforming := s.Type&typeCode == 0 || s.Type&typeConforming == 0
		if dataOrNonConforming && s.DPL < cpl {
			*s = kvm.Segment{Base: s.Base, Unusable: 1}
		}
	}
}
