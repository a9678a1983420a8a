package boot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/vmm-dev/vmm/guestmem"
)

const testMem = 64 << 20

// zeroReader is an initrd of any size that costs no memory in the test.
type zeroReader struct{}

func (zeroReader) ReadAt(p []byte, _ int64) (int, error) {
	clear(p)
	return len(p), nil
}

func loadSynth(t *testing.T, mem *guestmem.Memory, s synth, initrd []byte, cmdline string) (*EntryState, error) {
	t.Helper()
	k := s.bytes()
	cfg := Config{Kernel: bytes.NewReader(k), KernelSize: int64(len(k)), Cmdline: cmdline}
	if initrd != nil {
		cfg.Initrd, cfg.InitrdSize = bytes.NewReader(initrd), int64(len(initrd))
	}
	return Load(mem, cfg)
}

func read(t *testing.T, mem *guestmem.Memory, addr guestmem.GuestAddr, n uint64) []byte {
	t.Helper()
	b, err := mem.Slice(addr, n)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLoad_FillsZeroPageAndMemory(t *testing.T) {
	mem := guestmem.NewTest(testMem)
	s := defaultSynth()
	initrd := pattern(0x12345, 9)
	const cmdline = "console=ttyS0 panic=-1"
	st, err := loadSynth(t, mem, s, initrd, cmdline)
	if err != nil {
		t.Fatal(err)
	}
	wantInitrd := uint64(testMem-len(initrd)) &^ 0xFFF
	zp := read(t, mem, ZeroPageAddr, 0x1000)
	le := binary.LittleEndian
	fields := []struct {
		name      string
		got, want uint64
	}{
		{"boot_flag", uint64(le.Uint16(zp[0x1FE:])), 0xAA55},
		{"header", uint64(le.Uint32(zp[0x202:])), HeaderMagic},
		{"version", uint64(le.Uint16(zp[0x206:])), 0x020F},
		{"type_of_loader", uint64(zp[0x210]), 0xFF},
		{"loadflags", uint64(zp[0x211]), LoadedHigh},
		{"ramdisk_image", uint64(le.Uint32(zp[0x218:])), wantInitrd},
		{"ramdisk_size", uint64(le.Uint32(zp[0x21C:])), uint64(len(initrd))},
		{"cmd_line_ptr", uint64(le.Uint32(zp[0x228:])), 0x20000},
		{"cmdline_size", uint64(le.Uint32(zp[0x238:])), 2048},
		{"init_size", uint64(le.Uint32(zp[0x260:])), 0x20000},
		{"ext_ramdisk_image", uint64(le.Uint32(zp[0x0C0:])), 0},
		{"ext_ramdisk_size", uint64(le.Uint32(zp[0x0C4:])), 0},
		{"ext_cmd_line_ptr", uint64(le.Uint32(zp[0x0C8:])), 0},
		{"e820_entries", uint64(zp[0x1E8]), 4},
		{"past the setup header", uint64(zp[0x26C]), 0},
	}
	for _, f := range fields {
		if f.got != f.want {
			t.Errorf("%s = %#x, want %#x", f.name, f.got, f.want)
		}
	}
	wantE820 := []E820Entry{
		{0, 0x9FC00, E820RAM},
		{0x9FC00, 0x400, E820Reserved},
		{0xE0000, 0x20000, E820Reserved},
		{0x100000, testMem - 0x100000, E820RAM},
	}
	for i, w := range wantE820 {
		e := zp[0x2D0+20*i:]
		got := E820Entry{le.Uint64(e), le.Uint64(e[8:]), E820Type(le.Uint32(e[16:]))}
		if got != w {
			t.Errorf("e820[%d] = %+v, want %+v", i, got, w)
		}
	}
	if got := read(t, mem, CmdlineAddr, uint64(len(cmdline)+1)); string(got) != cmdline+"\x00" {
		t.Errorf("cmdline = %q", got)
	}
	if got := read(t, mem, KernelAddr, uint64(len(s.payload))); !bytes.Equal(got, s.payload) {
		t.Error("payload at 0x100000 differs from the file's protected-mode kernel")
	}
	if got := read(t, mem, guestmem.GuestAddr(wantInitrd), uint64(len(initrd))); !bytes.Equal(got, initrd) {
		t.Error("initrd bytes differ")
	}
	if st.RIP != 0x100200 || st.RSI != 0x7000 {
		t.Errorf("RIP %#x RSI %#x, want 0x100200 0x7000", st.RIP, st.RSI)
	}
}

func TestLoad_EntryState(t *testing.T) {
	st, err := loadSynth(t, guestmem.NewTest(testMem), defaultSynth(), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	regs := []struct {
		name      string
		got, want uint64
	}{
		{"RIP", st.RIP, 0x100200},
		{"RSI", st.RSI, 0x7000},
		{"RSP", st.RSP, 0x8FF0},
		{"RFLAGS", st.RFLAGS, 0x2},
		{"CR0", st.CR0, 0x80000031},
		{"CR3", st.CR3, 0x9000},
		{"CR4", st.CR4, 0x20},
		{"EFER", st.EFER, 0x500},
		{"GDT base", st.GDTBase, 0x500},
		{"GDT limit", uint64(st.GDTLimit), 0x2F},
		{"CS", uint64(st.CS.Selector), 0x10},
		{"DS", uint64(st.DS.Selector), 0x18},
		{"TR", uint64(st.TR.Selector), 0x20},
	}
	for _, r := range regs {
		if r.got != r.want {
			t.Errorf("%s = %#x, want %#x", r.name, r.got, r.want)
		}
	}
}

func TestLoad_NoInitrd_RamdiskFieldsZero(t *testing.T) {
	mem := guestmem.NewTest(testMem)
	if _, err := loadSynth(t, mem, defaultSynth(), nil, ""); err != nil {
		t.Fatal(err)
	}
	zp := read(t, mem, ZeroPageAddr, 0x1000)
	if img, size := binary.LittleEndian.Uint32(zp[0x218:]), binary.LittleEndian.Uint32(zp[0x21C:]); img != 0 || size != 0 {
		t.Errorf("ramdisk_image %#x ramdisk_size %#x, want 0 0", img, size)
	}
	if got := read(t, mem, CmdlineAddr, 1); got[0] != 0 {
		t.Errorf("empty cmdline not NUL-terminated")
	}
}

func TestLoad_GDTMatchesEntrySegments(t *testing.T) {
	mem := guestmem.NewTest(testMem)
	st, err := loadSynth(t, mem, defaultSynth(), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	gdt := read(t, mem, GDTAddr, uint64(st.GDTLimit)+1)
	word := func(i int) uint64 { return binary.LittleEndian.Uint64(gdt[i*8:]) }
	want := []uint64{0, 0, 0x00AF9B000000FFFF, 0x00CF93000000FFFF, 0x00008B0000000067, 0}
	for i, w := range want {
		if word(i) != w {
			t.Errorf("GDT[%d] = %#016x, want %#016x", i, word(i), w)
		}
	}
	for _, seg := range []Segment{st.CS, st.DS, st.TR} {
		got := DecodeSegment(word(int(seg.Selector / 8)))
		got.Selector = seg.Selector
		if got != seg {
			t.Errorf("GDT entry %#x = %+v, EntryState has %+v", seg.Selector, got, seg)
		}
	}
}

// translate walks the 4-level tables from cr3 the way the MMU does for a
// 2 MiB page.
func translate(t *testing.T, mem *guestmem.Memory, cr3, va uint64) uint64 {
	t.Helper()
	entry := func(table, index uint64) uint64 {
		v, err := mem.ReadUint64(guestmem.GuestAddr(table + index*8))
		if err != nil {
			t.Fatal(err)
		}
		if v&3 != 3 {
			t.Fatalf("va %#x: entry %#x at %#x+%d not present and writable", va, v, table, index)
		}
		return v
	}
	const addrMask = 0x000F_FFFF_FFFF_F000
	pml4e := entry(cr3, va>>39&511)
	pdpte := entry(pml4e&addrMask, va>>30&511)
	pde := entry(pdpte&addrMask, va>>21&511)
	if pde&0x80 == 0 {
		t.Fatalf("va %#x: PD entry %#x is not a 2 MiB page", va, pde)
	}
	return pde&^(2<<20-1)&addrMask | va&(2<<20-1)
}

func TestLoad_PageTables_IdentityMapFirst4GiB(t *testing.T) {
	mem := guestmem.NewTest(testMem)
	st, err := loadSynth(t, mem, defaultSynth(), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, va := range []uint64{0, 0x7000, 0x100200, 0x3FFF_FFFF, 0x4000_0000, 0xBFFF_F000, 0xFEE0_0000, 0xFFFF_FFFF} {
		if pa := translate(t, mem, st.CR3, va); pa != va {
			t.Errorf("va %#x maps to %#x", va, pa)
		}
	}
	if pdpt4, _ := mem.ReadUint64(PDPTAddr + 4*8); pdpt4 != 0 {
		t.Errorf("PDPT[4] = %#x, want 0: only 4 GiB mapped", pdpt4)
	}
}

func TestLoad_CmdlineLimit(t *testing.T) {
	tests := []struct {
		name        string
		cmdlineSize uint32
		len         int
		wantLimit   int // 0: no error
	}{
		{"at cmdline_size", 100, 100, 0},
		{"one over cmdline_size", 100, 101, 100},
		{"empty with size 0", 0, 0, 0},
		{"at the space before the EBDA", 0xFFFFFFFF, 0x9FC00 - 0x20000 - 1, 0},
		{"past the space before the EBDA", 0xFFFFFFFF, 0x9FC00 - 0x20000, 0x9FC00 - 0x20000 - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := defaultSynth()
			s.cmdlineSize = tt.cmdlineSize
			mem := guestmem.NewTest(4 << 20)
			_, err := loadSynth(t, mem, s, nil, strings.Repeat("x", tt.len))
			var ce *CmdlineTooLongError
			switch {
			case tt.wantLimit == 0 && err != nil:
				t.Fatalf("Load: %v", err)
			case tt.wantLimit != 0 && (!errors.As(err, &ce) || *ce != CmdlineTooLongError{tt.len, tt.wantLimit}):
				t.Fatalf("Load = %v, want CmdlineTooLongError{%d, %d}", err, tt.len, tt.wantLimit)
			case tt.wantLimit != 0 && !errors.Is(err, ErrCmdlineTooLong):
				t.Fatalf("%v is not ErrCmdlineTooLong", err)
			}
		})
	}
}

func TestLoad_CmdlineWithNUL_Rejected(t *testing.T) {
	if _, err := loadSynth(t, guestmem.NewTest(4<<20), defaultSynth(), nil, "a\x00b"); err == nil {
		t.Fatal("Load accepted a command line with a NUL")
	}
}
