package boot

import "encoding/binary"

// BzImageOptions tunes BuildBzImage. Zero values pick the defaults.
type BzImageOptions struct {
	SetupSects    uint8  // setup_sects; 0 means 1 (the smallest valid setup)
	CmdlineSize   uint32 // cmdline_size; 0 means 2048
	InitrdAddrMax uint32 // initrd_addr_max; 0 means 0x7fffffff
	// InitSize is init_size, the RAM the payload needs from 0x100000,
	// including any .bss past the file's end. It is raised to the payload
	// size if smaller, and rounded up to 4 KiB.
	InitSize uint32
}

const (
	defaultCmdlineSize   = 2048
	defaultInitrdAddrMax = 0x7fffffff
	buildVersion         = 0x020F // 2.15
	jumpShort            = 0xEB   // "jmp short" over the header, as real kernels do
)

// BuildBzImage wraps a flat 64-bit payload into a minimal bzImage that
// ParseHeader and Load accept. It is for tests and for the micro-guest
// harness, which runs tiny guests without a real kernel.
//
// The payload is loaded at 0x100000 (KernelAddr) and entered at payload
// offset 0x200 in 64-bit mode, with the identity map, GDT and registers of
// EntryState (RSI = zero page at 0x7000). So it must be linked to run at
// 0x100000 and have its entry point 0x200 bytes in; an empty payload gives
// an image ParseHeader rejects. The header says protocol 2.15, XLF_KERNEL_64,
// LOADED_HIGH, relocatable_kernel=0 and pref_address=0x100000, so nothing
// moves it. The real-mode setup code is only a 16-bit halt loop: this image
// cannot boot through the 16-bit entry.
func BuildBzImage(payload []byte, opts BzImageOptions) []byte {
	setupSects := opts.SetupSects
	if setupSects == 0 {
		setupSects = 1
	}
	cmdlineSize := opts.CmdlineSize
	if cmdlineSize == 0 {
		cmdlineSize = defaultCmdlineSize
	}
	initrdAddrMax := opts.InitrdAddrMax
	if initrdAddrMax == 0 {
		initrdAddrMax = defaultInitrdAddrMax
	}
	initSize := uint32(alignUp(max(uint64(opts.InitSize), uint64(len(payload))), pageSize))

	setupLen := (int(setupSects) + 1) * sectorSize
	b := make([]byte, setupLen+len(payload))
	copy(b[setupLen:], payload)

	le := binary.LittleEndian
	b[offSetupSects] = setupSects
	le.PutUint32(b[offSyssize:], uint32((len(payload)+syssizeParagraph-1)/syssizeParagraph))
	le.PutUint16(b[offBootFlag:], BootFlagMagic)
	// The jump's displacement is the header length past 0x202 (boot.rst),
	// and lands on the halt loop written right after the header.
	b[offJump] = jumpShort
	b[offJump+1] = setupHeaderEnd215 - offHeader
	copy(b[setupHeaderEnd215:], []byte{0xF4, jumpShort, 0xFD}) // hlt; jmp short -3
	le.PutUint32(b[offHeader:], HeaderMagic)
	le.PutUint16(b[offVersion:], buildVersion)
	b[offLoadflags] = LoadedHigh
	le.PutUint32(b[offCode32Start:], uint32(KernelAddr))
	le.PutUint32(b[offInitrdAddrMax:], initrdAddrMax)
	le.PutUint32(b[offKernelAlignment:], uint32(KernelAddr))
	le.PutUint16(b[offXloadflags:], XLFKernel64)
	le.PutUint32(b[offCmdlineSize:], cmdlineSize)
	le.PutUint64(b[offPrefAddress:], uint64(KernelAddr))
	le.PutUint32(b[offInitSize:], initSize)
	return b
}
