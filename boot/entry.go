package boot

// Control register and EFER bits (Intel SDM vol. 3, 2.5 and 2.2.1).
const (
	CR0PE = 1 << 0  // protected mode
	CR0ET = 1 << 4  // extension type: always 1 on modern CPUs
	CR0NE = 1 << 5  // native x87 error reporting, as Linux itself sets
	CR0PG = 1 << 31 // paging

	CR4PAE = 1 << 5

	EFERLME = 1 << 8  // long mode enable
	EFERLMA = 1 << 10 // long mode active

	RFLAGSReserved = 1 << 1 // bit 1 always reads 1; IF stays clear
)

// BootStack is the initial RSP: the top of the free page between the zero
// page (0x7000..0x7FFF) and the page tables (0x9000). The 64-bit entry sets
// its own stack first thing; this only keeps a stray push off our tables.
const BootStack = 0x8FF0

// EntryState is the vCPU state for the boot protocol's 64-bit entry (boot.rst
// "64-bit Boot Protocol"): long mode with the identity tables, CS=__BOOT_CS,
// the other data segments __BOOT_DS, interrupts off, RSI = the zero page.
// It is in boot's own types; the vmm package copies it into KVM's.
type EntryState struct {
	RIP    uint64
	RSI    uint64
	RSP    uint64
	RFLAGS uint64

	CR0  uint64
	CR3  uint64
	CR4  uint64
	EFER uint64

	GDTBase  uint64
	GDTLimit uint16

	CS  Segment
	DS  Segment // also ES, FS, GS and SS
	TR  Segment
	LDT Segment
}

// entryState is the state for a 64-bit entry at rip with its zero page at
// params: the bzImage's protected-mode code +0x200, or a vmlinux's
// startup_64, which expects the same state (head_64.S).
func entryState(rip, params uint64) *EntryState {
	return &EntryState{
		RIP:      rip,
		RSI:      params,
		RSP:      BootStack,
		RFLAGS:   RFLAGSReserved,
		CR0:      CR0PE | CR0ET | CR0NE | CR0PG,
		CR3:      uint64(PML4Addr),
		CR4:      CR4PAE,
		EFER:     EFERLME | EFERLMA,
		GDTBase:  uint64(GDTAddr),
		GDTLimit: GDTLimit,
		CS:       CodeSegment(),
		DS:       DataSegment(),
		TR:       TSSSegment(),
		LDT:      LDTSegment(),
	}
}
