/*
 * int3: installs an IDT whose vector 3 is an interrupt gate (DPL 3, as
 * Linux's idt.c makes it) to a stub that counts and returns with iretq,
 * executes int3, then stac and clac. A software-only KVM (kvm_pvm) can run
 * none of int3, iretq, stac or clac in long mode: the guest needs the VMM's
 * fallback emulator (vmm/emulate). Output:
 *
 *	int3: before
 *	int3: handler ran 1, back at after_int3
 *	clac ok
 *
 * A mismatch prints what was seen instead, and the guest still resets.
 */
#include "rt.h"

#define RFLAGS_AC (1UL << 18)

#define GATE_INTERRUPT_DPL3 0xEE /* P=1, DPL=3, type 0xE */
#define VECTOR_BP 3

static struct gate idt[4] __attribute__((aligned(16)));

/* Written by int3_entry. */
volatile u64 int3_count;
volatile u64 int3_rip; /* RIP the CPU pushed */
volatile u64 int3_rsp; /* RSP the CPU pushed */
volatile u64 int3_frame; /* RSP at handler entry */

extern const char int3_entry[];
extern const char after_int3[];

/*
 * The frame at entry: RIP, CS, RFLAGS, RSP, SS, 8 bytes each. The stub
 * saves RAX first, so the frame starts at 8(%rsp).
 */
__asm__(
	"	.text\n"
	"	.globl	int3_entry\n"
	"int3_entry:\n"
	"	pushq	%rax\n"
	"	incq	int3_count(%rip)\n"
	"	leaq	8(%rsp), %rax\n"
	"	movq	%rax, int3_frame(%rip)\n"
	"	movq	8(%rsp), %rax\n"
	"	movq	%rax, int3_rip(%rip)\n"
	"	movq	32(%rsp), %rax\n"
	"	movq	%rax, int3_rsp(%rip)\n"
	"	popq	%rax\n"
	"	iretq\n");

static void set_gate(struct gate *g, u64 handler, u16 cs, u8 type_attr)
{
	g->offset_lo = (u16)handler;
	g->selector = cs;
	g->ist = 0;
	g->type_attr = type_attr;
	g->offset_mid = (u16)(handler >> 16);
	g->offset_hi = (u32)(handler >> 32);
	g->reserved = 0;
}

static u64 rflags(void)
{
	u64 f;

	__asm__ volatile("pushfq\n\tpopq %0" : "=r"(f));
	return f;
}

/* noinline: the label after int3 must exist exactly once. */
static __attribute__((noinline)) void do_int3(u64 *rsp_before)
{
	__asm__ volatile("movq %%rsp, %0\n\t"
			 "int3\n"
			 "	.globl after_int3\n"
			 "after_int3:"
			 : "=m"(*rsp_before)
			 :
			 : "memory");
}

static void test_int3(void)
{
	struct table_reg idtr = { sizeof(idt) - 1, (u64)idt };
	u16 cs;
	u64 rsp_before, flags_before, flags_after;

	__asm__ volatile("movw %%cs, %0" : "=r"(cs));
	set_gate(&idt[VECTOR_BP], (u64)int3_entry, cs, GATE_INTERRUPT_DPL3);
	__asm__ volatile("lidt %0" : : "m"(idtr));

	uart_puts("int3: before\n");
	flags_before = rflags();
	do_int3(&rsp_before);
	flags_after = rflags();

	uart_puts("int3: handler ran ");
	uart_dec(int3_count);
	uart_puts(", back at ");
	if (int3_rip == (u64)after_int3) {
		uart_puts("after_int3");
	} else {
		uart_hex(int3_rip);
		uart_puts(" (after_int3 is ");
		uart_hex((u64)after_int3);
		uart_puts(")");
	}
	uart_putc('\n');
	if (int3_rsp != rsp_before || (int3_frame + 40) % 16 != 0 || flags_after != flags_before) {
		uart_puts("int3: bad frame: rsp ");
		uart_hex(int3_rsp);
		uart_puts(" want ");
		uart_hex(rsp_before);
		uart_puts(", frame ");
		uart_hex(int3_frame);
		uart_puts(", rflags ");
		uart_hex(flags_after);
		uart_puts(" want ");
		uart_hex(flags_before);
		uart_putc('\n');
	}
}

static void test_clac(void)
{
	u64 after_stac, after_clac;

	__asm__ volatile("stac\n\t"
			 "pushfq\n\t"
			 "popq %0\n\t"
			 "clac\n\t"
			 "pushfq\n\t"
			 "popq %1"
			 : "=r"(after_stac), "=r"(after_clac));
	if ((after_stac & RFLAGS_AC) && !(after_clac & RFLAGS_AC)) {
		uart_puts("clac ok\n");
		return;
	}
	uart_puts("clac: rflags after stac ");
	uart_hex(after_stac);
	uart_puts(", after clac ");
	uart_hex(after_clac);
	uart_putc('\n');
}

int main(const u8 *boot_params)
{
	(void)boot_params;
	test_int3();
	test_clac();
	return 0;
}
