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
// moves it. The real-mode setup code (setup16) does what Linux's setup does
// last: it enters 32-bit protected mode with flat segments and jumps to
// code32_start with ESI = boot_params, so boot loaders that use the 16-bit
// entry (QEMU's qboot and linuxboot ROMs) reach the payload's own 32-bit
// entry at 0x100000; the payload decides what to do there.
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
	// and lands on setup16, written right after the header.
	b[offJump] = jumpShort
	b[offJump+1] = setupHeaderEnd215 - offHeader
	copy(b[setupHeaderEnd215:], setup16)
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

// setup16 is the real-mode setup code, placed at file offset 0x26C (right
// after the 2.15 header). boot.rst's 16-bit entry runs it at CS = seg+0x20,
// IP = 0, DS = ES = SS = seg, with the setup sectors copied to seg:0: so
// offsets below are CS-relative (file offset - 0x200), the zero page is at
// DS base and code32_start at DS:0x214. Assembled from (GNU as, .code16,
// .org 0x6c):
//
//	cli
//	mov   %ds, %ax; movzwl %ax, %esi; shl $4, %esi   # ESI = boot_params
//	mov   0x214, %eax; mov %eax, %cs:farptr          # far pointer = code32_start:0x10
//	mov   %cs, %ax; movzwl %ax, %eax; shl $4, %eax
//	add   $gdt, %eax; mov %eax, %cs:gdtr+2           # GDT's linear address
//	lgdtl %cs:gdtr
//	mov   %cr0, %eax; or $1, %al; mov %eax, %cr0    # CR0.PE
//	mov   $0x18, %ax; mov %ax, %ds, %es, %fs, %gs, %ss
//	ljmpl *%cs:farptr
//	gdt:    null, null, 0x10 flat 32-bit code, 0x18 flat data (boot.rst's __BOOT_CS/__BOOT_DS)
//	gdtr:   .word 31; .long 0
//	farptr: .long 0; .word 0x10
var setup16 = []byte{
	0xfa,       // 6c cli
	0x8c, 0xd8, // 6d mov %ds,%ax
	0x66, 0x0f, 0xb7, 0xf0, // 6f movzwl %ax,%esi
	0x66, 0xc1, 0xe6, 0x04, // 73 shl $4,%esi
	0x66, 0xa1, 0x14, 0x02, // 77 mov 0x214,%eax
	0x2e, 0x66, 0xa3, 0xde, 0x00, // 7b mov %eax,%cs:0xde (farptr)
	0x8c, 0xc8, // 80 mov %cs,%ax
	0x66, 0x0f, 0xb7, 0xc0, // 82 movzwl %ax,%eax
	0x66, 0xc1, 0xe0, 0x04, // 86 shl $4,%eax
	0x66, 0x05, 0xb8, 0x00, 0x00, 0x00, // 8a add $0xb8 (gdt),%eax
	0x2e, 0x66, 0xa3, 0xda, 0x00, // 90 mov %eax,%cs:0xda (gdtr+2)
	0x2e, 0x66, 0x0f, 0x01, 0x16, 0xd8, 0x00, // 95 lgdtl %cs:0xd8 (gdtr)
	0x0f, 0x20, 0xc0, // 9c mov %cr0,%eax
	0x0c, 0x01, // 9f or $1,%al
	0x0f, 0x22, 0xc0, // a1 mov %eax,%cr0
	0xb8, 0x18, 0x00, // a4 mov $0x18,%ax
	0x8e, 0xd8, // a7 mov %ax,%ds
	0x8e, 0xc0, // a9 mov %ax,%es
	0x8e, 0xe0, // ab mov %ax,%fs
	0x8e, 0xe8, // ad mov %ax,%gs
	0x8e, 0xd0, // af mov %ax,%ss
	0x2e, 0x66, 0xff, 0x2e, 0xde, 0x00, // b1 ljmpl *%cs:0xde (farptr)
	0x90,                                           // b7 nop (align)
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // b8 gdt: null, null
	0xff, 0xff, 0x00, 0x00, 0x00, 0x9a, 0xcf, 0x00, // c8 0x10: base 0, limit 4 GiB, code, 32-bit
	0xff, 0xff, 0x00, 0x00, 0x00, 0x92, 0xcf, 0x00, // d0 0x18: base 0, limit 4 GiB, data
	0x1f, 0x00, 0x00, 0x00, 0x00, 0x00, // d8 gdtr: limit 31, base (filled in)
	0x00, 0x00, 0x00, 0x00, 0x10, 0x00, // de farptr: code32_start (filled in), 0x10
}
