package vmlinux

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/vmm-dev/vmm/boot"
)

// elfSpec describes a synthetic ELF64 executable. Its bytes are laid out by
// hand with the ELF spec's offsets, not with debug/elf.
type elfSpec struct {
	class, machine, typ uint16 // class goes in e_ident[EI_CLASS]
	entry               uint64
	segs                []elfSeg
}

type elfSeg struct {
	typ    uint32
	paddr  uint64
	data   []byte // the file bytes; filesz is len(data) unless filesz is set
	filesz uint64
	memsz  uint64
}

const (
	testText = 0x100_0000 // where Linux links startup_64: 16 MiB
	testData = 0x101_0000
	testMem  = 64 << 20
)

// defaultELF is a vmlinux in miniature: text at 16 MiB, entered at its
// start, and a data segment whose memsz runs 0x4000 past its file bytes.
func defaultELF() elfSpec {
	return elfSpec{
		class: 2, machine: 62, typ: 2, // ELFCLASS64, EM_X86_64, ET_EXEC
		entry: testText,
		segs: []elfSeg{
			{typ: 1, paddr: testText, data: pattern(0x3000, 5), memsz: 0x3000},
			{typ: 4, paddr: 0x7000, memsz: 0x100}, // PT_NOTE: not loaded
			{typ: 1, paddr: testData, data: pattern(0x1000, 11), memsz: 0x5000},
		},
	}
}

func testELF(t testing.TB, s elfSpec) []byte {
	t.Helper()
	const ehsize, phentsize = 64, 56
	le := binary.LittleEndian
	b := make([]byte, ehsize+phentsize*len(s.segs))
	copy(b, "\x7fELF")
	b[4], b[5], b[6] = byte(s.class), 1, 1 // EI_CLASS, ELFDATA2LSB, EV_CURRENT
	le.PutUint16(b[16:], s.typ)
	le.PutUint16(b[18:], s.machine)
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[24:], s.entry)
	le.PutUint64(b[32:], ehsize) // e_phoff
	le.PutUint16(b[52:], ehsize)
	le.PutUint16(b[54:], phentsize)
	le.PutUint16(b[56:], uint16(len(s.segs)))
	for i, seg := range s.segs {
		ph := b[ehsize+i*phentsize:]
		filesz := uint64(len(seg.data))
		if seg.filesz != 0 {
			filesz = seg.filesz
		}
		le.PutUint32(ph[0:], seg.typ)
		le.PutUint32(ph[4:], 5)                                // PF_R|PF_X
		le.PutUint64(ph[8:], uint64(len(b)))                   // p_offset: appended below
		le.PutUint64(ph[16:], seg.paddr+0xFFFF_FFFF_8000_0000) // p_vaddr
		le.PutUint64(ph[24:], seg.paddr)
		le.PutUint64(ph[32:], filesz)
		le.PutUint64(ph[40:], seg.memsz)
		le.PutUint64(ph[48:], 0x1000)
		b = append(b, seg.data...)
	}
	return b
}

func TestParse_Valid(t *testing.T) {
	s := defaultELF()
	image := testELF(t, s)
	v, err := Parse(image)
	if err != nil {
		t.Fatal(err)
	}
	if v.Entry != testText || v.ImageSize != int64(len(image)) || len(v.Segments) != 2 {
		t.Fatalf("entry %#x, image size %d, %d segments", v.Entry, v.ImageSize, len(v.Segments))
	}
	// The PT_NOTE is skipped; each PT_LOAD's file bytes are where its
	// segment says.
	for i, want := range [][]byte{s.segs[0].data, s.segs[2].data} {
		seg := v.Segments[i]
		got := make([]byte, seg.Filesz)
		if _, err := v.Image.ReadAt(got, int64(seg.Off)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("segment %d at %#x: bytes differ (%v)", i, seg.Paddr, err)
		}
	}
	if seg := v.Segments[1]; seg.Paddr != testData || seg.Filesz != 0x1000 || seg.Memsz != 0x5000 {
		t.Errorf("data segment %+v", seg)
	}
	if err := v.Check(testMem); err != nil {
		t.Fatal(err)
	}
}

func TestParse_VirtualEntry_MadePhysical(t *testing.T) {
	s := defaultELF()
	s.entry = 0xFFFF_FFFF_8100_0010
	v, err := Parse(testELF(t, s))
	if err != nil {
		t.Fatal(err)
	}
	if v.Entry != testText+0x10 {
		t.Fatalf("entry %#x, want %#x", v.Entry, testText+0x10)
	}
}

// The ELF checks are Parse's own; the layout checks are boot's, run with
// no RAM limit (boot's tests cover each).
func TestParse_Errors(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*elfSpec)
	}{
		{"32-bit class", func(s *elfSpec) { s.class = 1 }},
		{"wrong machine", func(s *elfSpec) { s.machine = 183 }}, // EM_AARCH64
		{"not executable", func(s *elfSpec) { s.typ = 3 }},      // ET_DYN
		{"no PT_LOAD", func(s *elfSpec) { s.segs = s.segs[1:2] }},
		{"filesz over memsz", func(s *elfSpec) { s.segs[0].memsz = 0x2000 }},
		{"file bytes past the end", func(s *elfSpec) { s.segs[2].filesz = 0x2000 }},
		{"over the zero page", func(s *elfSpec) { s.segs[0].paddr = 0x6000 }},
		{"over the page tables", func(s *elfSpec) { s.segs[0].paddr = 0xE000 }},
		{"over the command line", func(s *elfSpec) { s.segs[0].paddr = 0x20000 }},
		{"below 1 MiB elsewhere", func(s *elfSpec) { s.segs[0].paddr = 0x10000 }},
		{"segments overlap", func(s *elfSpec) { s.segs[2].paddr = testText + 0x2000 }},
		{"address wraps", func(s *elfSpec) { s.segs[2].paddr = 0xFFFF_FFFF_FFFF_F000 }},
		{"entry outside the segments", func(s *elfSpec) { s.entry = testText + 0x3000 }},
		{"entry in bss", func(s *elfSpec) { s.entry = testData + 0x2000 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := defaultELF()
			tt.modify(&s)
			if _, err := Parse(testELF(t, s)); !errors.Is(err, boot.ErrNotVmlinux) {
				t.Fatalf("err = %v, want ErrNotVmlinux", err)
			}
		})
	}
}

func TestParse_NotELF(t *testing.T) {
	if _, err := Parse([]byte("\x7fELF but not really")); !errors.Is(err, boot.ErrNotVmlinux) {
		t.Fatalf("err = %v, want ErrNotVmlinux", err)
	}
}

// Parse has no RAM limit; the guest's is boot's to check.
func TestParse_LargeKernel_TooLargeOnlyForSmallRAM(t *testing.T) {
	s := defaultELF()
	s.segs[2].memsz = testMem // from 0x1010000: past the end of a 64 MiB guest's RAM
	v, err := Parse(testELF(t, s))
	if err != nil {
		t.Fatal(err)
	}
	var kt *boot.KernelTooLargeError
	if err := v.Check(testMem); !errors.As(err, &kt) || kt.End != testData+testMem || kt.RAMEnd != testMem {
		t.Fatalf("err = %v, want KernelTooLargeError{%#x, %#x}", err, testData+testMem, testMem)
	}
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)*7 + seed
	}
	return b
}
