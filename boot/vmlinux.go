package boot

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/vmm-dev/vmm/guestmem"
)

// MaxVmlinuxSegments bounds a Vmlinux's segments. A Linux vmlinux has
// about five PT_LOADs; the bound keeps a layout read from outside (a cache
// file) cheap to check.
const MaxVmlinuxSegments = 64

// NoRAMLimit is the ramEnd for Vmlinux.Check that checks a layout's
// structure alone, before the guest's memory is known.
const NoRAMLimit = ^uint64(0)

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

// Vmlinux is a decompressed kernel laid out for Load: the bytes of Image
// (ImageSize long) that its segments name go to guest physical addresses,
// and the vCPU enters at the physical address Entry (startup_64). Package
// boot/vmlinux makes one from a bzImage, on the host side; Load checks it
// again, since it may have been read from a cache file.
type Vmlinux struct {
	Image     io.ReaderAt `json:"-"`
	ImageSize int64
	Entry     uint64
	Segments  []VmlinuxSegment
}

// VmlinuxSegment is one PT_LOAD: file bytes [Off, Off+Filesz) go to guest
// physical Paddr, followed by Memsz-Filesz zero bytes (the bss).
type VmlinuxSegment struct {
	Paddr, Off, Filesz, Memsz uint64
}

// Check reports whether v can be placed in a guest whose low RAM ends at
// ramEnd (NoRAMLimit: whatever its size): every segment's file bytes lie in
// the image, each segment lies at or above KernelAddr, clear of the boot
// structures and below ramEnd (else a KernelTooLargeError), none overlaps
// another, and the entry point is inside some segment's file bytes.
func (v *Vmlinux) Check(ramEnd uint64) error {
	switch {
	case v.Image == nil:
		return &VmlinuxError{Reason: "no image to read the segments from"}
	case v.ImageSize < 0:
		return &VmlinuxError{Reason: fmt.Sprintf("image size %d is negative", v.ImageSize)}
	case len(v.Segments) == 0:
		return &VmlinuxError{Reason: "no PT_LOAD segments"}
	case len(v.Segments) > MaxVmlinuxSegments:
		return &VmlinuxError{Reason: fmt.Sprintf("%d PT_LOAD segments; the limit is %d", len(v.Segments), MaxVmlinuxSegments)}
	}
	for i, s := range v.Segments {
		if err := checkSegment(s, uint64(v.ImageSize), ramEnd); err != nil {
			var tooLarge *KernelTooLargeError
			if errors.As(err, &tooLarge) {
				return fmt.Errorf("vmlinux PT_LOAD %d at %#x: %w", i, s.Paddr, err)
			}
			return &VmlinuxError{Reason: fmt.Sprintf("PT_LOAD %d (paddr %#x, memsz %#x): %s", i, s.Paddr, s.Memsz, err)}
		}
	}
	sorted := slices.SortedFunc(slices.Values(v.Segments), func(a, b VmlinuxSegment) int {
		return cmp.Compare(a.Paddr, b.Paddr)
	})
	for i := 1; i < len(sorted); i++ {
		prev, s := sorted[i-1], sorted[i]
		if prev.Paddr+prev.Memsz > s.Paddr {
			return &VmlinuxError{Reason: fmt.Sprintf(
				"PT_LOAD segments at %#x (memsz %#x) and %#x overlap", prev.Paddr, prev.Memsz, s.Paddr)}
		}
	}
	if !v.inLoadedCode(v.Entry) {
		return &VmlinuxError{Reason: fmt.Sprintf("entry point %#x is not inside a PT_LOAD segment's file bytes", v.Entry)}
	}
	return nil
}

// checkSegment checks one segment against the image and guest RAM.
func checkSegment(s VmlinuxSegment, imageSize, ramEnd uint64) error {
	if s.Filesz > s.Memsz {
		return fmt.Errorf("filesz %#x is larger than memsz", s.Filesz)
	}
	if s.Off > imageSize || s.Filesz > imageSize-s.Off {
		return fmt.Errorf("file bytes [%#x, +%#x) run past the %d-byte image", s.Off, s.Filesz, imageSize)
	}
	end, ok := guestmem.GuestAddr(s.Paddr).Add(s.Memsz)
	if !ok {
		return fmt.Errorf("end overflows")
	}
	for _, r := range reservedLow {
		if s.Paddr < r.end && uint64(end) > r.start {
			return fmt.Errorf("overlaps the %s at [%#x, %#x)", r.name, r.start, r.end)
		}
	}
	if s.Paddr < uint64(KernelAddr) {
		return fmt.Errorf("starts below %#x, in the area reserved for boot structures", uint64(KernelAddr))
	}
	if uint64(end) > ramEnd {
		return &KernelTooLargeError{End: uint64(end), RAMEnd: ramEnd}
	}
	return nil
}

// inLoadedCode reports whether addr lies in some segment's file bytes.
func (v *Vmlinux) inLoadedCode(addr uint64) bool {
	for _, s := range v.Segments {
		if addr >= s.Paddr && addr-s.Paddr < s.Filesz {
			return true
		}
	}
	return false
}

// end returns the first byte past the highest segment, bss included. Only
// for a checked v.
func (v *Vmlinux) end() uint64 {
	var e uint64
	for _, s := range v.Segments {
		e = max(e, s.Paddr+s.Memsz)
	}
	return e
}

// place reads every segment's file bytes straight into guest memory at its
// physical address and zeroes the rest of its memsz (the bss). Check
// validated every range; Slice checks it again against the regions.
func (v *Vmlinux) place(mem *guestmem.Memory) error {
	for _, s := range v.Segments {
		dst, err := mem.Slice(guestmem.GuestAddr(s.Paddr), s.Memsz)
		if err != nil {
			return fmt.Errorf("place vmlinux segment at %#x: %w", s.Paddr, err)
		}
		if _, err := io.ReadFull(io.NewSectionReader(v.Image, int64(s.Off), int64(s.Filesz)), dst[:s.Filesz]); err != nil {
			return fmt.Errorf("read vmlinux segment at %#x: %w", s.Paddr, err)
		}
		clear(dst[s.Filesz:])
	}
	return nil
}
