package boot

import (
	"fmt"
	"io"
	"strings"

	"github.com/vmm-dev/vmm/guestmem"
)

// Guest physical layout of the boot structures (design.md memory map).
const (
	GDTAddr      guestmem.GuestAddr = 0x500
	ZeroPageAddr guestmem.GuestAddr = 0x7000
	CmdlineAddr  guestmem.GuestAddr = 0x20000
	// KernelAddr is where the protected-mode payload goes: 0x100000, the
	// LOADED_HIGH address (code32_start's default). We use it for every
	// kernel. A non-relocatable one runs its decompressor from anywhere
	// and decompresses to pref_address; a relocatable one realigns itself
	// to kernel_alignment (boot.rst); a flat BuildBzImage payload is
	// linked to run exactly here.
	KernelAddr guestmem.GuestAddr = 0x100000

	// The command line may run up to the EBDA, the next thing above it.
	cmdlineSpace = EBDAStart - uint64(CmdlineAddr)
	initrdAlign  = pageSize
)

// Config says what Load puts into guest memory.
type Config struct {
	Kernel     io.ReaderAt // a bzImage
	KernelSize int64
	Initrd     io.ReaderAt // nil: no initrd
	InitrdSize int64
	Cmdline    string // without the terminating NUL

	// Vmlinux, if set, is the bzImage's kernel decompressed on the host
	// (package boot/vmlinux): Load checks it, places its segments at
	// their physical addresses and enters startup_64 directly, skipping
	// the guest-side decompressor. The zero page is the same as without
	// it. Nil boots the bzImage as is.
	Vmlinux *Vmlinux
}

// Load writes the kernel, initrd, command line, zero page, GDT and page
// tables into mem and returns the vCPU state for the 64-bit entry. The first
// region of mem must start at 0 and hold the kernel's working area; the
// initrd goes at the top of it (below initrd_addr_max and the MMIO hole).
func Load(mem *guestmem.Memory, cfg Config) (*EntryState, error) {
	if cfg.KernelSize < 0 || cfg.InitrdSize < 0 {
		return nil, fmt.Errorf("kernel size %d, initrd size %d: %w", cfg.KernelSize, cfg.InitrdSize, errNegativeSize)
	}
	if cfg.Initrd == nil && cfg.InitrdSize > 0 {
		return nil, errInitrdNoReader
	}
	h, err := ParseHeader(cfg.Kernel, cfg.KernelSize)
	if err != nil {
		return nil, err
	}
	lowEnd, err := lowRAMEnd(mem.Regions())
	if err != nil {
		return nil, err
	}
	if err := checkCmdline(cfg.Cmdline, h.CmdlineSize); err != nil {
		return nil, err
	}
	k, err := prepareKernel(h, cfg, lowEnd)
	if err != nil {
		return nil, err
	}
	if k.end > lowEnd {
		return nil, &KernelTooLargeError{End: k.end, RAMEnd: lowEnd}
	}
	p := bootParams{cmdline: uint64(CmdlineAddr), e820: E820Map(mem.Regions())}
	if cfg.InitrdSize > 0 {
		ceiling := min(uint64(h.InitrdAddrMax)+1, lowEnd)
		p.initrdSize = uint64(cfg.InitrdSize)
		if p.initrdAddr, err = placeInitrd(p.initrdSize, alignUp(k.end, initrdAlign), ceiling); err != nil {
			return nil, err
		}
	}
	zp, err := buildZeroPage(h, p)
	if err != nil {
		return nil, err
	}
	gdt, err := buildGDT(CodeSegment(), DataSegment(), TSSSegment())
	if err != nil {
		return nil, err
	}

	if err := k.place(mem); err != nil {
		return nil, err
	}
	if p.initrdSize > 0 {
		if err := copyIn(mem, guestmem.GuestAddr(p.initrdAddr), cfg.Initrd, 0, cfg.InitrdSize); err != nil {
			return nil, fmt.Errorf("read initrd: %w", err)
		}
	}
	for _, w := range []struct {
		what string
		addr guestmem.GuestAddr
		b    []byte
	}{
		{"command line", CmdlineAddr, append([]byte(cfg.Cmdline), 0)},
		{"zero page", ZeroPageAddr, zp},
		{"GDT", GDTAddr, gdt},
		{"page tables", PML4Addr, pageTables()},
	} {
		if err := mem.WriteAt(w.b, w.addr); err != nil {
			return nil, fmt.Errorf("write %s: %w", w.what, err)
		}
	}
	return entryState(k.entry, uint64(ZeroPageAddr)), nil
}

// preparedKernel is a kernel checked against guest RAM, ready to place:
// where it is entered and the first byte past everything it may use.
type preparedKernel struct {
	entry uint64
	end   uint64
	place func(*guestmem.Memory) error
}

// prepareKernel decides where the kernel goes without writing anything:
// the protected-mode code at KernelAddr, entered at +0x200; or, with
// Config.Vmlinux, the vmlinux segments at their physical addresses,
// entered at startup_64. Either way the initrd stays clear of kernelEnd
// (init_size from pref_address), which for a vmlinux also covers the
// memory startup_64 uses past its bss (brk, early page tables).
func prepareKernel(h *Header, cfg Config, lowEnd uint64) (*preparedKernel, error) {
	kEnd := kernelEnd(h)
	v := cfg.Vmlinux
	if v == nil {
		return &preparedKernel{
			entry: uint64(KernelAddr) + entry64Offset,
			end:   kEnd,
			place: func(mem *guestmem.Memory) error {
				if err := copyIn(mem, KernelAddr, cfg.Kernel, h.KernelOffset, h.KernelSize); err != nil {
					return fmt.Errorf("read kernel: %w", err)
				}
				return nil
			},
		}, nil
	}
	if err := v.Check(lowEnd); err != nil {
		return nil, err
	}
	return &preparedKernel{entry: v.Entry, end: max(kEnd, v.end()), place: v.place}, nil
}

// lowRAMEnd returns the end of the RAM the boot layout can use: the first
// region, which must start at 0 and reach past KernelAddr, clipped to the
// MMIO hole and the identity map.
func lowRAMEnd(regions []guestmem.RegionSpec) (uint64, error) {
	if len(regions) == 0 || regions[0].Start != 0 {
		return 0, errLayoutNotAtZero
	}
	end := min(uint64(regions[0].End()), uint64(guestmem.MMIOHoleStart), IdentityLimit)
	if end <= uint64(KernelAddr) {
		return 0, fmt.Errorf("low RAM ends at %#x, at or below the kernel's load address %#x; give the VM more memory: %w",
			end, uint64(KernelAddr), ErrMemoryTooSmall)
	}
	return end, nil
}

// kernelEnd returns the first byte past the kernel's working area. The
// payload occupies [KernelAddr, +max(init_size, payload)); the 64-bit
// decompressor also moves itself to, and decompresses at, the larger of its
// load address rounded up to kernel_alignment (if relocatable_kernel) and
// pref_address, using init_size bytes there (arch/x86/boot/compressed/
// head_64.S). The initrd must stay clear of both.
func kernelEnd(h *Header) uint64 {
	load := uint64(KernelAddr)
	initSize := uint64(h.InitSize)
	end := load + max(initSize, uint64(h.KernelSize))
	out := load
	if a := h.KernelAlignment; h.Relocatable() && a > 0 && a&(a-1) == 0 {
		out = alignUp(load, uint64(h.KernelAlignment))
	}
	out = max(out, h.PrefAddress)
	if out > guestmem.MaxSize {
		// A nonsense pref_address or alignment: nothing can satisfy it.
		return guestmem.MaxSize
	}
	return max(end, out+initSize)
}

// checkCmdline checks the command line against cmdline_size (its limit
// without the NUL, boot.rst) and the space before the EBDA.
func checkCmdline(s string, cmdlineSize uint32) error {
	if strings.IndexByte(s, 0) >= 0 {
		return errCmdlineHasNUL
	}
	limit := min(uint64(cmdlineSize), cmdlineSpace-1)
	if uint64(len(s)) > limit {
		return &CmdlineTooLongError{Len: len(s), Limit: int(limit)}
	}
	return nil
}

// placeInitrd returns the highest initrdAlign-aligned address a at which
// [a, a+size) lies inside [low, ceiling).
func placeInitrd(size, low, ceiling uint64) (uint64, error) {
	if size > ceiling || alignDown(ceiling-size, initrdAlign) < low {
		return 0, &InitrdTooLargeError{Size: size, Low: low, Ceiling: ceiling}
	}
	return alignDown(ceiling-size, initrdAlign), nil
}

// copyIn reads n bytes at off in r straight into guest memory at addr.
func copyIn(mem *guestmem.Memory, addr guestmem.GuestAddr, r io.ReaderAt, off, n int64) error {
	dst, err := mem.Slice(addr, uint64(n))
	if err != nil {
		return err
	}
	_, err = io.ReadFull(io.NewSectionReader(r, off, n), dst)
	return err
}

// alignUp and alignDown round v to a multiple of align, a power of two.
func alignUp(v, align uint64) uint64 { return alignDown(v+align-1, align) }

func alignDown(v, align uint64) uint64 { return v &^ (align - 1) }
