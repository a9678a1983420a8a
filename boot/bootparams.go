package boot

import (
	"encoding/binary"
	"fmt"
)

// Zero page (struct boot_params, boot.rst "The Zero Page" and
// zero-page.rst) fields outside the setup header that this loader sets.
const (
	zeroPageSize          = 0x1000
	zpExtRamdiskImage     = 0x0C0 // ext_ramdisk_image: ramdisk_image bits 63:32
	zpExtRamdiskSize      = 0x0C4 // ext_ramdisk_size: ramdisk_size bits 63:32
	zpExtCmdLinePtr       = 0x0C8 // ext_cmd_line_ptr: cmd_line_ptr bits 63:32
	zpE820Entries         = 0x1E8 // e820_entries
	zpE820Table           = 0x2D0 // e820_table[E820_MAX_ENTRIES_ZEROPAGE]
	typeOfLoaderUndefined = 0xFF  // type_of_loader: no assigned ID
)

// bootParams is what Load puts in the zero page besides the kernel's own
// setup header.
type bootParams struct {
	cmdline    uint64 // address of the NUL-terminated command line
	initrdAddr uint64 // 0 with initrdSize 0: no initrd
	initrdSize uint64
	e820       []E820Entry
}

// buildZeroPage returns the zero page: the file's setup header copied to
// 0x1F1 (boot.rst: "copy the setup header into the zero page"), then the
// fields a boot loader must fill in.
func buildZeroPage(h *Header, p bootParams) ([]byte, error) {
	if len(p.e820) > e820MaxEntries {
		return nil, fmt.Errorf("%d entries, at most %d: %w", len(p.e820), e820MaxEntries, errTooManyE820)
	}
	b := make([]byte, zeroPageSize)
	copy(b[offSetupSects:], h.setup)
	le := binary.LittleEndian

	b[offTypeOfLoader] = typeOfLoaderUndefined
	// LOADED_HIGH: the payload is at 0x100000. CAN_USE_HEAP and
	// heap_end_ptr only matter to the real-mode setup code we skip.
	b[offLoadflags] |= LoadedHigh
	le.PutUint32(b[offCmdLinePtr:], uint32(p.cmdline))
	le.PutUint32(b[zpExtCmdLinePtr:], uint32(p.cmdline>>32))
	le.PutUint32(b[offRamdiskImage:], uint32(p.initrdAddr))
	le.PutUint32(b[zpExtRamdiskImage:], uint32(p.initrdAddr>>32))
	le.PutUint32(b[offRamdiskSize:], uint32(p.initrdSize))
	le.PutUint32(b[zpExtRamdiskSize:], uint32(p.initrdSize>>32))

	b[zpE820Entries] = uint8(len(p.e820))
	for i, e := range p.e820 {
		o := zpE820Table + i*e820EntrySize
		le.PutUint64(b[o:], e.Addr)
		le.PutUint64(b[o+8:], e.Size)
		le.PutUint32(b[o+16:], uint32(e.Type))
	}
	return b, nil
}
