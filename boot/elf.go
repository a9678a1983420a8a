package boot

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"sort"

	"github.com/vmm-dev/vmm/guestmem"
)

// startKernelMap is __START_KERNEL_map (arch/x86/include/asm/page_64_types.h):
// the kernel's virtual addresses are its physical ones plus this.
const startKernelMap = 0xFFFF_FFFF_8000_0000

// reservedLow are the boot structures below 1 MiB that a vmlinux segment
// must not overwrite (design.md memory map). Everything below KernelAddr is
// refused anyway; these name what a segment would have hit.
var reservedLow = []struct {
	name       string
	start, end uint64
}{
	{"GDT", uint64(GDTAddr), uint64(GDTAddr) + GDTLimit + 1},
	{"zero page", uint64(ZeroPageAddr), uint64(ZeroPageAddr) + zeroPageSize},
	{"boot stack", uint64(ZeroPageAddr) + zeroPageSize, uint64(PML4Addr)},
	{"page tables", uint64(PML4Addr), uint64(PDAddr) + identityPDs*pageSize},
	{"command line", uint64(CmdlineAddr), EBDAStart},
	{"EBDA, VGA and BIOS area (ACPI tables)", EBDAStart, BIOSROMEnd},
}

// vmlinuxSegment is one validated PT_LOAD: file bytes [off, off+filesz)
// go to guest physical paddr, followed by memsz-filesz zero bytes.
type vmlinuxSegment struct {
	paddr, off, filesz, memsz uint64
}

// vmlinux is a validated ELF kernel image: its segments, sorted by paddr and
// not overlapping, its physical entry point, and the end of its highest
// segment (bss included).
type vmlinux struct {
	image    []byte
	segments []vmlinuxSegment
	entry    uint64
	end      uint64
}

// parseVmlinux checks that image is an ELF64 x86-64 executable whose PT_LOAD
// segments lie in the file, at or above KernelAddr and below ramEnd, without
// overlapping, and whose entry point is inside one of them. It reads only.
func parseVmlinux(image []byte, ramEnd uint64) (*vmlinux, error) {
	f, err := elf.NewFile(bytes.NewReader(image))
	if err != nil {
		return nil, &VmlinuxError{Reason: fmt.Sprintf("not an ELF file (%v)", err)}
	}
	switch {
	case f.Class != elf.ELFCLASS64:
		return nil, &VmlinuxError{Reason: fmt.Sprintf("ELF class is %v, want ELFCLASS64", f.Class)}
	case f.Data != elf.ELFDATA2LSB:
		return nil, &VmlinuxError{Reason: fmt.Sprintf("ELF data encoding is %v, want ELFDATA2LSB", f.Data)}
	case f.Machine != elf.EM_X86_64:
		return nil, &VmlinuxError{Reason: fmt.Sprintf("ELF machine is %v, want EM_X86_64", f.Machine)}
	case f.Type != elf.ET_EXEC:
		return nil, &VmlinuxError{Reason: fmt.Sprintf("ELF type is %v, want ET_EXEC", f.Type)}
	}
	v := &vmlinux{image: image}
	for i, p := range f.Progs {
		if p.Type != elf.PT_LOAD || p.Memsz == 0 {
			continue
		}
		s := vmlinuxSegment{paddr: p.Paddr, off: p.Off, filesz: p.Filesz, memsz: p.Memsz}
		if err := checkSegment(s, uint64(len(image)), ramEnd); err != nil {
			var tooLarge *KernelTooLargeError
			if errors.As(err, &tooLarge) {
				return nil, fmt.Errorf("vmlinux PT_LOAD %d at %#x: %w", i, s.paddr, err)
			}
			return nil, &VmlinuxError{Reason: fmt.Sprintf("PT_LOAD %d (paddr %#x, memsz %#x): %s", i, s.paddr, s.memsz, err)}
		}
		v.segments = append(v.segments, s)
	}
	if len(v.segments) == 0 {
		return nil, &VmlinuxError{Reason: "no PT_LOAD segments"}
	}
	sort.Slice(v.segments, func(i, j int) bool { return v.segments[i].paddr < v.segments[j].paddr })
	for i := 1; i < len(v.segments); i++ {
		prev, s := v.segments[i-1], v.segments[i]
		if prev.paddr+prev.memsz > s.paddr {
			return nil, &VmlinuxError{Reason: fmt.Sprintf(
				"PT_LOAD segments at %#x (memsz %#x) and %#x overlap", prev.paddr, prev.memsz, s.paddr)}
		}
	}
	last := v.segments[len(v.segments)-1]
	v.end = last.paddr + last.memsz
	v.entry = f.Entry
	// Linux links e_entry to phys_startup_64 (vmlinux.lds.S ENTRY), but a
	// kernel built otherwise may give the virtual startup_64.
	if v.entry >= startKernelMap {
		v.entry -= startKernelMap
	}
	if !v.inLoadedCode(v.entry) {
		return nil, &VmlinuxError{Reason: fmt.Sprintf("entry point %#x is not inside a PT_LOAD segment's file bytes", f.Entry)}
	}
	return v, nil
}

// checkSegment checks one segment against the file and guest RAM.
func checkSegment(s vmlinuxSegment, fileSize, ramEnd uint64) error {
	if s.filesz > s.memsz {
		return fmt.Errorf("filesz %#x is larger than memsz", s.filesz)
	}
	if s.off > fileSize || s.filesz > fileSize-s.off {
		return fmt.Errorf("file bytes [%#x, +%#x) run past the %d-byte image", s.off, s.filesz, fileSize)
	}
	end, ok := guestmem.GuestAddr(s.paddr).Add(s.memsz)
	if !ok {
		return fmt.Errorf("end overflows")
	}
	for _, r := range reservedLow {
		if s.paddr < r.end && uint64(end) > r.start {
			return fmt.Errorf("overlaps the %s at [%#x, %#x)", r.name, r.start, r.end)
		}
	}
	if s.paddr < uint64(KernelAddr) {
		return fmt.Errorf("starts below %#x, in the area reserved for boot structures", uint64(KernelAddr))
	}
	if uint64(end) > ramEnd {
		return &KernelTooLargeError{End: uint64(end), RAMEnd: ramEnd}
	}
	return nil
}

// inLoadedCode reports whether addr lies in some segment's file bytes.
func (v *vmlinux) inLoadedCode(addr uint64) bool {
	for _, s := range v.segments {
		if addr >= s.paddr && addr-s.paddr < s.filesz {
			return true
		}
	}
	return false
}

// place copies every segment to its physical address and zeroes the rest
// of its memsz (the bss). Every range was checked by parseVmlinux; Slice
// checks it again against the regions themselves.
func (v *vmlinux) place(mem *guestmem.Memory) error {
	for _, s := range v.segments {
		dst, err := mem.Slice(guestmem.GuestAddr(s.paddr), s.memsz)
		if err != nil {
			return fmt.Errorf("place vmlinux segment at %#x: %w", s.paddr, err)
		}
		n := copy(dst, v.image[s.off:s.off+s.filesz])
		clear(dst[n:])
	}
	return nil
}
