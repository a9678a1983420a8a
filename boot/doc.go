// Package boot loads a Linux x86_64 bzImage into guest memory for the boot
// protocol's 64-bit entry (Linux Documentation/arch/x86/boot.rst).
//
// ParseHeader reads the setup header as a pure function of an io.ReaderAt.
// Load writes, at the addresses fixed in design.md:
//
//	0x0500            GDT: null, null, __BOOT_CS 0x10, __BOOT_DS 0x18, TSS 0x20
//	0x7000            zero page (boot_params) with the file's setup header at 0x1F1
//	0x9000..0xEFFF    identity page tables (PML4, PDPT, 4 PDs of 2 MiB pages: 0..4 GiB)
//	0x20000           command line, NUL-terminated
//	0x100000          the protected-mode kernel, entered at +0x200
//	top of low RAM    the initrd, 4 KiB aligned, below initrd_addr_max
//
// and returns the vCPU state to start there (EntryState). Choices:
//
//   - Minimum protocol 2.12 (Linux 3.8): it added xloadflags, and
//     XLF_KERNEL_64 is how a kernel says it has the 64-bit entry.
//   - The kernel always goes at 0x100000. Relocatable kernels realign
//     themselves; the decompressor's working area, which may sit at
//     pref_address, is kept clear of the initrd (see kernelEnd).
//   - CR0 = PE|ET|NE|PG: NE because Linux runs with it and VMX requires it;
//     caches on (CD and NW clear). CR4 = PAE, EFER = LME|LMA, IF clear.
//
// With Config.Vmlinux, Load instead places a kernel decompressed on the
// host: it checks the layout (Vmlinux.Check), reads the vmlinux's PT_LOAD
// segments into guest memory at their physical addresses (16 MiB for
// Linux) and enters startup_64 directly with the same zero page and CPU
// state: the guest skips its own decompressor, which under a software KVM
// takes longer than the rest of early boot. The decompression itself
// (gzip, LZ4 legacy, zstd) and the ELF parsing are in package
// boot/vmlinux, which vmm-images runs and caches, so the VM process links
// neither; this package keeps only the layout and the errors both share.
//
// The package knows nothing about KVM or devices; vmm copies EntryState
// into KVM's registers.
package boot
