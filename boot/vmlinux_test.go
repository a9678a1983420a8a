package boot

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/vmm-dev/vmm/guestmem"
)

const (
	testText = 0x100_0000 // where Linux links startup_64: 16 MiB
	testData = 0x101_0000
)

// testVmlinux is a vmlinux layout in miniature, as boot/vmlinux would
// read it from an ELF: text at 16 MiB, entered at its start, and a data
// segment whose memsz runs 0x4000 past its file bytes. The image holds
// the text at 0x1000 and the data at 0x4000.
func testVmlinux() *Vmlinux {
	image := make([]byte, 0x5000)
	copy(image[0x1000:], pattern(0x3000, 5))
	copy(image[0x4000:], pattern(0x1000, 11))
	return &Vmlinux{
		Image: bytes.NewReader(image), ImageSize: int64(len(image)), Entry: testText,
		Segments: []VmlinuxSegment{
			{Paddr: testText, Off: 0x1000, Filesz: 0x3000, Memsz: 0x3000},
			{Paddr: testData, Off: 0x4000, Filesz: 0x1000, Memsz: 0x5000},
		},
	}
}

func TestVmlinuxCheck_Valid(t *testing.T) {
	v := testVmlinux()
	if err := v.Check(testMem); err != nil {
		t.Fatal(err)
	}
	if v.end() != testData+0x5000 {
		t.Fatalf("end %#x", v.end())
	}
	// Segments in any order: the check sorts a copy.
	v.Segments[0], v.Segments[1] = v.Segments[1], v.Segments[0]
	if err := v.Check(NoRAMLimit); err != nil {
		t.Fatal(err)
	}
}

// Each check of a layout read from outside (a cache file) refuses it.
func TestVmlinuxCheck_Errors(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Vmlinux)
		want   string // in the error
	}{
		{"no image", func(v *Vmlinux) { v.Image = nil }, "no image"},
		{"negative image size", func(v *Vmlinux) { v.ImageSize = -1 }, "negative"},
		{"no segments", func(v *Vmlinux) { v.Segments = nil }, "no PT_LOAD"},
		{"too many segments", func(v *Vmlinux) {
			for i := range MaxVmlinuxSegments {
				v.Segments = append(v.Segments, VmlinuxSegment{Paddr: testData + 0x10000 + uint64(i)*0x1000, Memsz: 0x1000})
			}
		}, "the limit is 64"},
		{"filesz over memsz", func(v *Vmlinux) { v.Segments[0].Memsz = 0x2000 }, "larger than memsz"},
		{"file bytes past the end", func(v *Vmlinux) { v.Segments[1].Filesz = 0x2000 }, "run past"},
		{"offset past the end", func(v *Vmlinux) { v.Segments[1].Off = 0x6000; v.Segments[1].Filesz = 0 }, "run past"},
		{"offset plus filesz wraps", func(v *Vmlinux) { v.Segments[1].Off = ^uint64(0) - 0x10 }, "run past"},
		{"image shorter than the layout says", func(v *Vmlinux) { v.ImageSize = 0x4800 }, "run past"},
		{"over the GDT", func(v *Vmlinux) { v.Segments[0].Paddr = 0 }, "the GDT"},
		{"over the zero page", func(v *Vmlinux) { v.Segments[0].Paddr = 0x6000 }, "zero page"},
		{"over the boot stack", func(v *Vmlinux) {
			v.Segments[0].Paddr = 0x8000
			v.Segments[0].Memsz = 0x1000
			v.Segments[0].Filesz = 0x1000
		}, "boot stack"},
		{"over the page tables", func(v *Vmlinux) { v.Segments[0].Paddr = 0xE000 }, "page tables"},
		{"over the command line", func(v *Vmlinux) { v.Segments[0].Paddr = 0x20000 }, "command line"},
		{"over the EBDA and BIOS area", func(v *Vmlinux) { v.Segments[0].Paddr = 0xF0000 }, "EBDA"},
		{"below 1 MiB elsewhere", func(v *Vmlinux) { v.Segments[0].Paddr = 0x10000 }, "starts below"},
		{"segments overlap", func(v *Vmlinux) { v.Segments[1].Paddr = testText + 0x2000 }, "overlap"},
		{"segments overlap, given in reverse", func(v *Vmlinux) {
			v.Segments[1].Paddr = testText - 0x1000
			v.Entry = testText + 0x1000
		}, "overlap"},
		{"address wraps", func(v *Vmlinux) { v.Segments[1].Paddr = 0xFFFF_FFFF_FFFF_F000 }, "overflows"},
		{"entry outside the segments", func(v *Vmlinux) { v.Entry = testText + 0x3000 }, "entry point"},
		{"entry in bss", func(v *Vmlinux) { v.Entry = testData + 0x2000 }, "entry point"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := testVmlinux()
			tt.modify(v)
			err := v.Check(testMem)
			if !errors.Is(err, ErrNotVmlinux) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrNotVmlinux about %q", err, tt.want)
			}
		})
	}
}

func TestVmlinuxCheck_PastRAM_KernelTooLarge(t *testing.T) {
	v := testVmlinux()
	v.Segments[1].Memsz = testMem // from 0x1010000: past the end of RAM
	err := v.Check(testMem)
	var kt *KernelTooLargeError
	if !errors.As(err, &kt) || kt.End != testData+testMem || kt.RAMEnd != testMem {
		t.Fatalf("err = %v, want KernelTooLargeError{%#x, %#x}", err, testData+testMem, testMem)
	}
	if err := v.Check(NoRAMLimit); err != nil {
		t.Fatalf("without a RAM limit: %v", err)
	}
}

func TestVmlinuxPlace_CopiesAndZeroesBss(t *testing.T) {
	v := testVmlinux()
	mem := guestmem.NewTest(testMem)
	dirty := read(t, mem, testData, 0x5000)
	for i := range dirty {
		dirty[i] = 0xAA
	}
	if err := v.Check(testMem); err != nil {
		t.Fatal(err)
	}
	if err := v.place(mem); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(read(t, mem, testText, 0x3000), pattern(0x3000, 5)) {
		t.Error("text segment differs")
	}
	if !bytes.Equal(read(t, mem, testData, 0x1000), pattern(0x1000, 11)) {
		t.Error("data segment differs")
	}
	if !bytes.Equal(read(t, mem, testData+0x1000, 0x4000), make([]byte, 0x4000)) {
		t.Error("bss not zeroed")
	}
}

// An image file shorter than the size the layout was checked against (a
// cache file truncated after the check) fails to place, naming the read.
func TestVmlinuxPlace_ShortImage(t *testing.T) {
	v := testVmlinux()
	v.Image = bytes.NewReader(make([]byte, 0x4800))
	if err := v.Check(testMem); err != nil {
		t.Fatal(err)
	}
	if err := v.place(guestmem.NewTest(testMem)); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want ErrUnexpectedEOF", err)
	}
}
