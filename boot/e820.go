package boot

import (
	"sort"

	"github.com/vmm-dev/vmm/guestmem"
)

// E820Type is an e820 address range type (ACPI "Address Range Types").
type E820Type uint32

const (
	E820RAM      E820Type = 1
	E820Reserved E820Type = 2
)

// E820Entry is one boot_params e820_table entry: 20 packed bytes, as
// encoding/binary lays this struct out (struct boot_e820_entry).
type E820Entry struct {
	Addr uint64
	Size uint64
	Type E820Type
}

// End returns the first address past the entry.
func (e E820Entry) End() uint64 { return e.Addr + e.Size }

// The legacy PC area below 1 MiB that is not RAM: the EBDA at the top of
// conventional memory, the VGA hole, and the BIOS area where the ACPI RSDP
// and tables go (design.md memory map).
const (
	EBDAStart    = 0x9FC00
	EBDAEnd      = 0xA0000
	BIOSROMStart = 0xE0000
	BIOSROMEnd   = 0x100000

	e820EntrySize  = 20
	e820MaxEntries = 128 // E820_MAX_ENTRIES_ZEROPAGE
)

// E820Map describes guest RAM to the kernel: every region is RAM except the
// legacy window [EBDAStart, BIOSROMEnd), of which the EBDA and the BIOS area
// are listed as reserved (so the kernel leaves them, and the ACPI tables
// there, alone) and the VGA hole is left out. The result is sorted.
func E820Map(regions []guestmem.RegionSpec) []E820Entry {
	out := []E820Entry{
		{Addr: EBDAStart, Size: EBDAEnd - EBDAStart, Type: E820Reserved},
		{Addr: BIOSROMStart, Size: BIOSROMEnd - BIOSROMStart, Type: E820Reserved},
	}
	for _, r := range regions {
		start, end := uint64(r.Start), uint64(r.End())
		// The part below the legacy window, then the part above it.
		if lo := min(end, EBDAStart); start < lo {
			out = append(out, E820Entry{Addr: start, Size: lo - start, Type: E820RAM})
		}
		if hi := max(start, BIOSROMEnd); hi < end {
			out = append(out, E820Entry{Addr: hi, Size: end - hi, Type: E820RAM})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr < out[j].Addr })
	return out
}
