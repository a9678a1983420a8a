/*
 * Entry of every micro-guest. The first 0x200 bytes stand where the 32-bit
 * protected-mode entry would be; this VMM only uses the 64-bit entry, so they
 * just halt. The 64-bit entry follows at 0x100200 with RSI = boot_params.
 */
	.section .text.boot, "ax"
	.code32
	.globl _stub32
_stub32:
1:	hlt
	jmp	1b
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

	.section .note.GNU-stack, "", @progbits
