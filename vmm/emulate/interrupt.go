package emulate

import (
	"encoding/binary"

	"github.com/vmm-dev/vmm/kvm"
)

const vectorBP = 3 // #BP, raised by INT3

// int3 delivers #BP as the CPU does for a software interrupt in 64-bit
// mode, with RIP past the one-byte instruction (SDM vol. 3, 6.14; vol. 2,
// INT n/INTO/INT3/INT1 pseudo-code, IA-32E-MODE).
func (v *vcpu) int3() (bool, error) {
	if !v.longMode() {
		return false, nil
	}
	return true, named("int3", v.softwareInterrupt(vectorBP, v.regs.RIP+1))
}

// softwareInterrupt delivers vector through its 64-bit gate with next as
// the return RIP.
func (v *vcpu) softwareInterrupt(vector uint8, next uint64) error {
	cpl := v.cpl()
	g, err := v.readGate(vector)
	if err != nil {
		return err
	}
	if g.typ != typeInterruptGate && g.typ != typeTrapGate {
		return faultf(VectorGP, "IDT entry %d has type %#x, not a 64-bit interrupt or trap gate", vector, g.typ)
	}
	if g.dpl < cpl { // software interrupts only (SDM vol. 3, 6.12.1.1)
		return faultf(VectorGP, "gate %d has DPL %d, below CPL %d", vector, g.dpl, cpl)
	}
	if !g.present {
		return faultf(VectorNP, "gate %d is not present", vector)
	}
	cs, newCPL, err := v.handlerCode(g, cpl)
	if err != nil {
		return err
	}
	if !v.canonical(g.offset) {
		return faultf(VectorGP, "gate %d handler %#x is not canonical", vector, g.offset)
	}
	rsp, err := v.handlerStack(g, newCPL, newCPL < cpl)
	if err != nil {
		return err
	}

	// The frame, from the new RSP up: RIP, CS, RFLAGS, RSP, SS.
	frame := []uint64{next, uint64(v.sregs.CS.Selector), v.regs.RFLAGS, v.regs.RSP, uint64(v.sregs.SS.Selector)}
	rsp -= uint64(len(frame)) * 8
	if err := v.push(rsp, frame); err != nil {
		return err
	}

	v.regs.RFLAGS &^= flagTF | flagNT | flagRF | flagVM
	if g.typ == typeInterruptGate {
		v.regs.RFLAGS &^= flagIF
	}
	v.regs.RIP = g.offset
	v.regs.RSP = rsp
	v.sregs.CS = cs
	if newCPL < cpl {
		v.sregs.SS = nullStack(newCPL)
	}
	v.segmentsChanged = true
	return nil
}

// handlerCode loads the gate's code segment, which must be present 64-bit
// code at a privilege no lower than the CPL, and returns it with the CPL the
// handler runs at: the segment's DPL unless the segment is conforming.
func (v *vcpu) handlerCode(g gate, cpl uint8) (kvm.Segment, uint8, error) {
	cs, err := v.descriptor(g.selector)
	if err != nil {
		return cs, 0, err
	}
	if cs.S == 0 || cs.Type&typeCode == 0 {
		return cs, 0, faultf(VectorGP, "gate selector %#x is not a code segment", g.selector)
	}
	if cs.DPL > cpl {
		return cs, 0, faultf(VectorGP, "handler segment %#x has DPL %d, above CPL %d", g.selector, cs.DPL, cpl)
	}
	if cs.Present == 0 {
		return cs, 0, faultf(VectorNP, "handler segment %#x is not present", g.selector)
	}
	if cs.L == 0 || cs.DB != 0 {
		return cs, 0, faultf(VectorGP, "handler segment %#x is not 64-bit code (L=%d D=%d)", g.selector, cs.L, cs.DB)
	}
	newCPL := cpl
	if cs.Type&typeConforming == 0 {
		newCPL = cs.DPL
	}
	cs.Selector = g.selector&^selectorRPL | uint16(newCPL)
	return cs, newCPL, nil
}

// handlerStack picks the handler's stack (SDM vol. 3, 6.14.4, 6.14.5): the
// gate's IST entry if it names one, else TSS.RSPn on a privilege change,
// else the current stack; aligned down to 16 bytes.
func (v *vcpu) handlerStack(g gate, newCPL uint8, privilegeChange bool) (uint64, error) {
	rsp := v.regs.RSP
	var err error
	switch {
	case g.ist != 0:
		rsp, err = v.tssStack(tssIST1 + uint64(g.ist-1)*8)
	case privilegeChange:
		rsp, err = v.tssStack(tssRSP0 + uint64(newCPL)*8)
	}
	if err != nil {
		return 0, err
	}
	if !v.canonical(rsp) {
		return 0, faultf(VectorSS, "handler stack %#x is not canonical", rsp)
	}
	return rsp &^ 0xF, nil
}

// push checks that the quadwords fit in writable memory at rsp and queues
// their write for commit.
func (v *vcpu) push(rsp uint64, words []uint64) error {
	if !v.canonical(rsp) {
		return faultf(VectorSS, "stack %#x is not canonical", rsp)
	}
	data := make([]byte, 8*len(words))
	for i, w := range words {
		binary.LittleEndian.PutUint64(data[8*i:], w)
	}
	sp, err := v.mem.spans(rsp, len(data), true, v.sregs.CR0&cr0WP != 0)
	if err != nil {
		return err
	}
	v.pending = append(v.pending, write{spans: sp, data: data})
	return nil
}
