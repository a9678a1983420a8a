package guestmem

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// HugePageSize is the x86 large-page size transparent huge pages use.
const HugePageSize = 2 << 20

// bootArea is the start of guest RAM where the loader leaves its scattered
// boot data (zero page, cmdline, page tables, ACPI tables, a small kernel
// at 1 MiB). It stays on 4 KiB pages so a guest that touches little of it
// does not cost a whole huge page.
const bootArea = HugePageSize

// mapRAM maps size bytes of anonymous guest RAM whose host address is
// aligned to HugePageSize, so guest-physical and host-virtual 2 MiB
// boundaries coincide. It then asks for transparent huge pages, as QEMU
// does: a host page fault then maps 2 MiB at once and KVM can map the
// guest with large pages (fewer faults, fewer TLB misses). skipHead bytes
// at the start are left on small pages.
func mapRAM(size, skipHead uint64) ([]byte, error) {
	const flags = unix.MAP_PRIVATE | unix.MAP_ANONYMOUS | unix.MAP_NORESERVE
	reserve := uintptr(size) + HugePageSize
	p, err := unix.MmapPtr(-1, 0, nil, reserve, unix.PROT_READ|unix.PROT_WRITE, flags)
	if err != nil {
		return nil, err
	}
	head := (HugePageSize - uintptr(p)%HugePageSize) % HugePageSize
	base := unsafe.Add(p, head)
	// Give back the unaligned head and the tail; neither was ever touched.
	if head > 0 {
		unix.MunmapPtr(p, head)
	}
	if tail := reserve - head - uintptr(size); tail > 0 {
		unix.MunmapPtr(unsafe.Add(base, size), tail)
	}
	b := unsafe.Slice((*byte)(base), size)
	if size > skipHead {
		// Best effort: a kernel without THP refuses, and small pages work.
		unix.Madvise(b[skipHead:], unix.MADV_HUGEPAGE)
	}
	return b, nil
}

// unmapRAM undoes mapRAM.
func unmapRAM(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	return unix.MunmapPtr(unsafe.Pointer(unsafe.SliceData(b)), uintptr(len(b)))
}
