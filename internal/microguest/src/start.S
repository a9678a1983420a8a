/*
 * Entry of every micro-guest. Two ways in:
 *
 * - 0x100200, the 64-bit entry (boot.rst, "64-bit boot protocol"): long mode,
 *   the loader's identity map, RSI = boot_params. vmm enters here.
 * - 0x100000, the 32-bit entry (code32_start; boot.rst, "32-bit boot
 *   protocol"): protected mode, paging off, flat __BOOT_CS/__BOOT_DS,
 *   ESI = boot_params. Boot loaders that use the 16-bit entry (QEMU's qboot
 *   on -M microvm, its linuxboot ROM on -M pc/q35) come here through the
 *   bzImage's real-mode setup (boot.BuildBzImage). This path switches to
 *   long mode with the image's own GDT and identity map of 0..4 GiB (2 MiB
 *   pages, as vmm's), then joins the 64-bit entry.
 */
#define CR0_PE		0x00000001
#define CR0_PG		0x80000000
#define CR4_PAE		0x00000020
#define MSR_EFER	0xc0000080
#define EFER_LME	0x00000100
#define PTE_P_RW	0x003
#define PDE_P_RW_PS	0x083		/* present, writable, 2 MiB page */
#define SEL_CODE64	0x10
#define SEL_DATA	0x18

	.section .text.boot, "ax"
	.code32
	.globl _start32
_start32:
	cli
	lgdt	gdt64_ptr
	movl	$SEL_DATA, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	movl	%eax, %fs
	movl	%eax, %gs
	movl	%cr4, %eax
	orl	$CR4_PAE, %eax
	movl	%eax, %cr4
	movl	$pml4, %eax
	movl	%eax, %cr3
	movl	$MSR_EFER, %ecx
	rdmsr
	orl	$EFER_LME, %eax
	wrmsr
	movl	%cr0, %eax
	orl	$(CR0_PG | CR0_PE), %eax
	movl	%eax, %cr0
	ljmp	$SEL_CODE64, $_start64	/* ESI, zero-extended, is RSI */
	.org	0x200, 0xf4

	.code64
	.globl _start64
_start64:
	cli
	leaq	stack_top(%rip), %rsp
	movq	%rsi, %rdi		/* main(boot_params) */
	call	main
	call	reset			/* does not return */
2:	hlt
	jmp	2b

	/* "aw" progbits rather than .bss, so the stack is part of the image. */
	.section .data.stack, "aw", @progbits
	.balign	16
stack_bottom:
	.space	16384
stack_top:

	/*
	 * For the 32-bit entry only. The tables are static data, not built
	 * by a loop at entry: guest instructions are what is slow here.
	 */
	.section .data.boot32, "aw", @progbits
	.balign	8
gdt64:
	.quad	0, 0
	.quad	0x00af9a000000ffff	/* 0x10: 64-bit code */
	.quad	0x00cf92000000ffff	/* 0x18: flat data */
gdt64_end:
gdt64_ptr:
	.word	gdt64_end - gdt64 - 1
	.long	gdt64

	.balign	4096
pml4:
	.quad	pdpt + PTE_P_RW
	.fill	511, 8, 0
pdpt:
	.quad	pd + PTE_P_RW, pd + 0x1000 + PTE_P_RW, pd + 0x2000 + PTE_P_RW, pd + 0x3000 + PTE_P_RW
	.fill	508, 8, 0
pd:
	.set	i, 0
	.rept	2048
	.quad	(i << 21) + PDE_P_RW_PS
	.set	i, i + 1
	.endr

	.section .note.GNU-stack, "", @progbits
