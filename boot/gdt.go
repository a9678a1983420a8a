package boot

import (
	"encoding/binary"
	"fmt"
)

// Segment is a segment register's hidden state, in the form the CPU (and
// KVM's kvm_segment) holds it: Limit is the byte-granular limit, already
// scaled by G (0xFFFFFFFF for a flat 4 GiB segment).
type Segment struct {
	Base     uint64
	Limit    uint32
	Selector uint16
	Type     uint8 // 4-bit descriptor type
	Present  bool
	DPL      uint8
	DB       bool // default operation size (32-bit); must be 0 when L is set
	S        bool // code/data (true) or system (false) descriptor
	L        bool // 64-bit code segment
	G        bool // limit in 4 KiB units
	AVL      bool
	Unusable bool // not loaded (LDT here); never encoded into the GDT
}

// Selectors and descriptor types for the 64-bit entry. boot.rst asks for
// __BOOT_CS (0x10) and __BOOT_DS (0x18), flat 4 GiB, execute/read and
// read/write; slots 0 and 1 stay null as in the kernel's own boot GDT.
const (
	SelectorCode = 0x10 // __BOOT_CS
	SelectorData = 0x18 // __BOOT_DS
	SelectorTSS  = 0x20

	typeCodeExecReadAccessed = 0xB
	typeDataReadWriteAccess  = 0x3
	typeTSS64Busy            = 0xB  // a system type when S=0
	tssLimit                 = 0x67 // the 104-byte 64-bit TSS, minus one

	// The GDT: null, null, code, data, then the 16-byte TSS descriptor.
	gdtEntries = 6
	gdtSize    = gdtEntries * 8
	GDTLimit   = gdtSize - 1
)

// Descriptor bit positions (Intel SDM vol. 3, 3.4.5 "Segment Descriptors").
const (
	descTypeShift = 40
	descS         = 1 << 44
	descDPLShift  = 45
	descP         = 1 << 47
	descAVL       = 1 << 52
	descL         = 1 << 53
	descDB        = 1 << 54
	descG         = 1 << 55
	granularity   = 12 // G=1 counts the limit in 4 KiB pages
	limitMax20    = 0xFFFFF
)

// CodeSegment returns the flat 64-bit code segment (__BOOT_CS).
func CodeSegment() Segment {
	return Segment{Limit: 0xFFFFFFFF, Selector: SelectorCode, Type: typeCodeExecReadAccessed,
		Present: true, S: true, L: true, G: true}
}

// DataSegment returns the flat read/write data segment (__BOOT_DS) loaded
// into DS, ES, FS, GS and SS.
func DataSegment() Segment {
	return Segment{Limit: 0xFFFFFFFF, Selector: SelectorData, Type: typeDataReadWriteAccess,
		Present: true, DB: true, S: true, G: true}
}

// TSSSegment returns a busy 64-bit TSS at 0: VM entry wants a usable TR of
// that type, and the kernel loads its own TSS long before it needs one.
func TSSSegment() Segment {
	return Segment{Limit: tssLimit, Selector: SelectorTSS, Type: typeTSS64Busy, Present: true}
}

// LDTSegment returns an unusable LDT: the boot path needs none.
func LDTSegment() Segment {
	return Segment{Type: 0x2, Unusable: true}
}

// EncodeSegment packs s into a (low) 8-byte GDT descriptor. It fails if the
// limit cannot be expressed with s.G, or if DPL or Type overflow their bits.
// A 64-bit system descriptor (S=0) takes a second word: s.Base>>32.
func EncodeSegment(s Segment) (uint64, error) {
	if s.DPL > 3 || s.Type > 0xF {
		return 0, fmt.Errorf("segment %#x: DPL %d or type %#x out of range", s.Selector, s.DPL, s.Type)
	}
	limit := s.Limit
	if s.G {
		if limit&(1<<granularity-1) != 1<<granularity-1 {
			return 0, fmt.Errorf("segment %#x: limit %#x is not a whole number of 4 KiB pages", s.Selector, s.Limit)
		}
		limit >>= granularity
	} else if limit > limitMax20 {
		return 0, fmt.Errorf("segment %#x: limit %#x needs G=1", s.Selector, s.Limit)
	}
	base := s.Base & 0xFFFFFFFF
	d := uint64(limit&0xFFFF) |
		(base&0xFFFFFF)<<16 |
		uint64(s.Type)<<descTypeShift |
		uint64(s.DPL)<<descDPLShift |
		uint64(limit>>16&0xF)<<48 |
		(base>>24)<<56
	for _, f := range []struct {
		set bool
		bit uint64
	}{{s.S, descS}, {s.Present, descP}, {s.AVL, descAVL}, {s.L, descL}, {s.DB, descDB}, {s.G, descG}} {
		if f.set {
			d |= f.bit
		}
	}
	return d, nil
}

// DecodeSegment unpacks an 8-byte descriptor (the low word for a system
// descriptor). Selector is left 0: it is not part of the descriptor.
func DecodeSegment(d uint64) Segment {
	limit := uint32(d&0xFFFF) | uint32(d>>48&0xF)<<16
	s := Segment{
		Base:    (d >> 16 & 0xFFFFFF) | (d>>56)<<24,
		Type:    uint8(d >> descTypeShift & 0xF),
		DPL:     uint8(d >> descDPLShift & 3),
		S:       d&descS != 0,
		Present: d&descP != 0,
		AVL:     d&descAVL != 0,
		L:       d&descL != 0,
		DB:      d&descDB != 0,
		G:       d&descG != 0,
	}
	if s.G {
		limit = limit<<granularity | (1<<granularity - 1)
	}
	s.Limit = limit
	return s
}

// buildGDT returns the GDT bytes for the given segments: null, null, code,
// data, and the two-word TSS descriptor.
func buildGDT(code, data, tss Segment) ([]byte, error) {
	words := make([]uint64, gdtEntries)
	for _, seg := range []Segment{code, data, tss} {
		d, err := EncodeSegment(seg)
		if err != nil {
			return nil, err
		}
		words[seg.Selector/8] = d
	}
	words[SelectorTSS/8+1] = tss.Base >> 32
	b := make([]byte, gdtSize)
	for i, w := range words {
		binary.LittleEndian.PutUint64(b[i*8:], w)
	}
	return b, nil
}
