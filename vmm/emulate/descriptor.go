package emulate

import (
	"encoding/binary"

	"github.com/vmm-dev/vmm/boot"
	"github.com/vmm-dev/vmm/kvm"
)

// Selector fields (SDM vol. 3, 3.4.2).
const (
	selectorRPL   = 0x3
	selectorTI    = 0x4 // 1: the LDT
	selectorIndex = ^uint16(0x7)
)

// Code and data segment type bits (SDM vol. 3, 3.4.5.1), S=1.
const (
	typeAccessed   = 0x1
	typeWritable   = 0x2 // data
	typeConforming = 0x4 // code
	typeCode       = 0x8
)

// System descriptor types (S=0) in IA-32e mode.
const (
	typeTSS64Available = 0x9
	typeTSS64Busy      = 0xB
	typeInterruptGate  = 0xE
	typeTrapGate       = 0xF
)

// descriptor reads the 8-byte code or data descriptor sel names from the
// GDT or LDT, as a segment register would hold it once loaded: accessed,
// with sel as its selector. A null selector or one past the table's limit
// is a #GP, as is an unusable LDT.
func (v *vcpu) descriptor(sel uint16) (kvm.Segment, error) {
	if sel&selectorIndex == 0 && sel&selectorTI == 0 {
		return kvm.Segment{}, faultf(VectorGP, "null selector %#x", sel)
	}
	base, limit := v.sregs.GDT.Base, uint32(v.sregs.GDT.Limit)
	table := "GDT"
	if sel&selectorTI != 0 {
		if v.sregs.LDT.Unusable != 0 || v.sregs.LDT.Present == 0 {
			return kvm.Segment{}, faultf(VectorGP, "selector %#x names the LDT, which is not loaded", sel)
		}
		base, limit, table = v.sregs.LDT.Base, v.sregs.LDT.Limit, "LDT"
	}
	off := uint64(sel & selectorIndex)
	if off+7 > uint64(limit) {
		return kvm.Segment{}, faultf(VectorGP, "selector %#x is past the %s limit %#x", sel, table, limit)
	}
	d, err := v.mem.readUint64(base + off)
	if err != nil {
		return kvm.Segment{}, err
	}
	s := segment(boot.DecodeSegment(d))
	s.Selector = sel
	if s.S != 0 {
		// The CPU marks the descriptor accessed on a load; VM entry wants
		// the bit in a usable CS or SS. The copy in memory is left as is.
		s.Type |= typeAccessed
	}
	return s, nil
}

// segment converts boot's decoded descriptor into KVM's form.
func segment(d boot.Segment) kvm.Segment {
	return kvm.Segment{
		Base: d.Base, Limit: d.Limit, Type: d.Type, DPL: d.DPL,
		Present: b2u(d.Present), DB: b2u(d.DB), S: b2u(d.S), L: b2u(d.L), G: b2u(d.G), AVL: b2u(d.AVL),
	}
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// nullStack is SS as the CPU loads a null selector in 64-bit mode at a
// privilege level below 3. KVM reads the CPL from SS.DPL, so it gets the
// shape KVM's own emulator gives it (arch/x86/kvm/emulate.c,
// __load_segment_descriptor): a present, flat, writable data segment whose
// DPL is the CPL.
func nullStack(cpl uint8) kvm.Segment {
	return kvm.Segment{Selector: uint16(cpl), Limit: 0xFFFFFFFF, Type: typeWritable | typeAccessed,
		Present: 1, DPL: cpl, DB: 1, S: 1, G: 1}
}

// gate is a 64-bit IDT gate (SDM vol. 3, 6.14.1, figure 6-8).
type gate struct {
	offset   uint64
	selector uint16
	ist      uint8
	typ      uint8
	dpl      uint8
	present  bool
}

const gateSize = 16

// readGate reads the IDT gate for vector, checking the IDT limit and that
// the upper half's type field is zero as 64-bit mode requires.
func (v *vcpu) readGate(vector uint8) (gate, error) {
	off := uint64(vector) * gateSize
	if off+gateSize-1 > uint64(v.sregs.IDT.Limit) {
		return gate{}, faultf(VectorGP, "vector %d is past the IDT limit %#x", vector, v.sregs.IDT.Limit)
	}
	b, err := v.mem.read(v.sregs.IDT.Base+off, gateSize)
	if err != nil {
		return gate{}, err
	}
	g := gate{
		offset: uint64(binary.LittleEndian.Uint16(b[0:])) |
			uint64(binary.LittleEndian.Uint16(b[6:]))<<16 |
			uint64(binary.LittleEndian.Uint32(b[8:]))<<32,
		selector: binary.LittleEndian.Uint16(b[2:]),
		ist:      b[4] & 0x7,
		typ:      b[5] & 0xF,
		dpl:      b[5] >> 5 & 0x3,
		present:  b[5]&0x80 != 0,
	}
	if b[5]&0x10 != 0 || b[13]&0x1F != 0 {
		return gate{}, faultf(VectorGP, "IDT entry %d is not a 64-bit gate (bytes % x)", vector, b)
	}
	return g, nil
}

// TSS offsets in IA-32e mode (SDM vol. 3, 8.7, figure 8-11).
const (
	tssRSP0 = 0x04
	tssIST1 = 0x24
)

// tssStack reads a stack pointer from the 64-bit TSS at off.
func (v *vcpu) tssStack(off uint64) (uint64, error) {
	tr := v.sregs.TR
	if tr.Unusable != 0 || tr.Present == 0 || tr.S != 0 || (tr.Type != typeTSS64Available && tr.Type != typeTSS64Busy) {
		return 0, faultf(VectorTS, "TR %#x is not a present 64-bit TSS (type %#x)", tr.Selector, tr.Type)
	}
	if off+7 > uint64(tr.Limit) {
		return 0, faultf(VectorTS, "TSS offset %#x is past its limit %#x", off, tr.Limit)
	}
	return v.mem.readUint64(tr.Base + off)
}
