package boot

import (
	"encoding/binary"

	"github.com/vmm-dev/vmm/guestmem"
)

// Identity page tables for the 64-bit entry: one PML4 entry, one PDPT with
// four entries, four page directories of 2 MiB pages, mapping [0, 4 GiB).
// boot.rst asks that the kernel (through init_size), the zero page and the
// command line be identity-mapped; 4 GiB covers all of low RAM and the MMIO
// hole, and the kernel builds its own tables straight away.
const (
	PML4Addr guestmem.GuestAddr = 0x9000
	PDPTAddr guestmem.GuestAddr = 0xA000
	PDAddr   guestmem.GuestAddr = 0xB000 // four pages: 0xB000..0xEFFF

	pageSize      = 0x1000
	hugePageSize  = 2 << 20
	ptEntries     = 512
	identityPDs   = 4 // one per GiB
	IdentityLimit = identityPDs * ptEntries * hugePageSize

	ptePresent  = 1 << 0
	pteWritable = 1 << 1
	ptePageSize = 1 << 7 // PS: a 2 MiB page in a PD entry
)

// pageTables returns the bytes from PML4Addr to the end of the last PD.
func pageTables() []byte {
	b := make([]byte, (2+identityPDs)*pageSize)
	le := binary.LittleEndian
	le.PutUint64(b[0:], uint64(PDPTAddr)|ptePresent|pteWritable)
	pdpt := b[pageSize:]
	for i := range identityPDs {
		pdAddr := uint64(PDAddr) + uint64(i)*pageSize
		le.PutUint64(pdpt[i*8:], pdAddr|ptePresent|pteWritable)
		pd := b[2*pageSize+i*pageSize:]
		for j := range ptEntries {
			phys := (uint64(i)*ptEntries + uint64(j)) * hugePageSize
			le.PutUint64(pd[j*8:], phys|ptePresent|pteWritable|ptePageSize)
		}
	}
	return b
}
