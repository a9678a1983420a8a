/*
 * cpus: more processors, and sleeping, for micro-guests that need them.
 *
 * aps_start sends INIT and two STARTUP IPIs to every other CPU at once
 * (Intel SDM vol. 3, 8.4.4.1). Each AP runs a real-mode trampoline copied
 * to 0x8000 that loads a GDT of its own, enters protected mode, turns on
 * PAE with the boot CPU's page tables and long mode, and calls
 * ap_main(apic_id) in 64-bit mode on a stack of its own. The includer
 * defines ap_main; it must not return. An AP waits with ap_wait (sti;
 * hlt), which costs the host nothing; aps_wake's IPI, or any other
 * interrupt, enters ap_main again from the top on a fresh stack (handlers
 * cannot return: see below), so ap_main keeps its state in memory.
 *
 * sleep_ms halts the boot CPU with interrupts enabled and wakes it with the
 * local APIC timer until the time is up, then calls a continuation: the
 * handlers never return (iretq is beyond this host's emulator), so neither
 * does sleep_ms. While it sleeps the vCPU costs the VMM no CPU time, which
 * is what a test that looks for a spinning VMM needs. Every vector from 32
 * up wakes it (stray interrupts included); an exception prints
 * "<name>: exception" and resets, on any CPU.
 */
#ifndef MICROGUEST_CPUS_H
#define MICROGUEST_CPUS_H

#include "vdrv.h"

#define CPUS_MAX 4
#define AP_STACK_SHIFT 14
#define AP_STACK (1 << AP_STACK_SHIFT)
#define CPUS_STR_(x) #x
#define CPUS_STR(x) CPUS_STR_(x)

#define LAPIC 0xfee00000ul
#define LAPIC_TPR 0x80
#define LAPIC_EOI 0xb0
#define LAPIC_SVR 0xf0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_LVT_LINT1 0x360
#define LAPIC_LVT_ERROR 0x370
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_CUR 0x390
#define LAPIC_TIMER_DIV 0x3e0
#define LAPIC_SVR_ENABLE 0x100
#define LVT_MASKED (1u << 16)
#define TIMER_DIV_16 0x3
#define ICR_INIT 0x00004500          /* INIT, level assert */
#define ICR_STARTUP 0x00004600       /* STARTUP, level assert; | vector */
#define ICR_ALL_BUT_SELF (3u << 18)  /* destination shorthand */
#define ICR_BUSY (1u << 12)          /* delivery status: send pending */

#define TRAMPOLINE 0x8000ul /* below vmm's page tables at 0x9000 */
#define VEC_TIMER 0xf0
#define VEC_WAKE 0xf1
#define VEC_SPURIOUS 0xff
#define ICR_FIXED_ASSERT 0x00004000 /* fixed delivery, level assert; | vector */

void ap_main(u32 apic_id) __attribute__((noreturn));

/* Real mode at 0x0800:0000, then protected mode in the trampoline's copy
 * at 0x8000 (absolute addresses are TRAMPOLINE + offset), then long mode
 * in the image. GDT: 0x08 32-bit code, 0x10 64-bit code, 0x18 data, as
 * the boot protocol's __BOOT_CS/__BOOT_DS. */
__asm__(".section .rodata.aptramp, \"a\"\n"
	".code16\n"
	"ap_tramp:\n"
	"	cli\n"
	"	xorw %ax, %ax\n"
	"	movw %ax, %ds\n"
	"	lgdtl 0x8000 + (tramp_gdtr - ap_tramp)\n"
	"	movl %cr0, %eax\n"
	"	orl $1, %eax\n"
	"	movl %eax, %cr0\n"
	"	ljmpl $0x08, $(0x8000 + (ap_prot - ap_tramp))\n"
	".code32\n"
	"ap_prot:\n"
	"	movl $0x18, %eax\n"
	"	movl %eax, %ds\n"
	"	movl %eax, %es\n"
	"	movl %eax, %ss\n"
	"	movl %cr4, %eax\n"
	"	orl $0x20, %eax\n" /* PAE */
	"	movl %eax, %cr4\n"
	"	movl 0x8000 + (tramp_cr3 - ap_tramp), %eax\n"
	"	movl %eax, %cr3\n"
	"	movl $0xc0000080, %ecx\n" /* EFER */
	"	rdmsr\n"
	"	orl $0x100, %eax\n" /* LME */
	"	wrmsr\n"
	"	movl %cr0, %eax\n"
	"	orl $0x80000000, %eax\n" /* PG */
	"	movl %eax, %cr0\n"
	"	ljmpl $0x10, $ap_long\n"
	".balign 8\n"
	"tramp_gdt:\n"
	"	.quad 0\n"
	"	.quad 0x00cf9a000000ffff\n"
	"	.quad 0x00af9a000000ffff\n"
	"	.quad 0x00cf92000000ffff\n"
	"tramp_gdtr:\n"
	"	.word 31\n"
	"	.long 0x8000 + (tramp_gdt - ap_tramp)\n"
	"tramp_cr3:\n"
	"	.long 0\n"
	"ap_tramp_end:\n"
	".text\n"
	".code64\n"
	"ap_long:\n"
	"	movl $0x18, %eax\n"
	"	movl %eax, %ds\n"
	"	movl %eax, %es\n"
	"	movl %eax, %ss\n"
	"	movl %eax, %fs\n"
	"	movl %eax, %gs\n"
	"	movl $1, %eax\n"
	"	cpuid\n"
	"	shrl $24, %ebx\n" /* initial APIC ID */
	"	cmpl $" CPUS_STR(CPUS_MAX) ", %ebx\n" /* one stack each */
	"	jae 2f\n"
	"	movl %ebx, %edi\n"
	"	leaq 1(%rbx), %rax\n"
	"	shlq $" CPUS_STR(AP_STACK_SHIFT) ", %rax\n"
	"	leaq ap_stacks(%rip), %rsp\n"
	"	addq %rax, %rsp\n"
	"	call ap_main\n"
	"2:	cli\n"
	"	hlt\n"
	"	jmp 2b\n");

extern const u8 ap_tramp[], tramp_cr3[], ap_tramp_end[];
void ap_long(void);
static u8 ap_stacks[CPUS_MAX][AP_STACK] __attribute__((aligned(16), used));

static inline void lapic_write(u32 reg, u32 val) { *(volatile u32 *)(LAPIC + reg) = val; }
static inline u32 lapic_read(u32 reg) { return *(volatile u32 *)(LAPIC + reg); }
static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }

static inline u64 read_cr3(void)
{
	u64 v;
	__asm__ volatile("mov %%cr3, %0" : "=r"(v));
	return v;
}

static void wait_ms(u64 ms)
{
	struct pm_clock c;
	pm_clock_start(&c);
	while (pm_clock_ms(&c) < ms)
		;
}

static void send_ipi(u32 icr)
{
	lapic_write(LAPIC_ICR_HI, 0);
	lapic_write(LAPIC_ICR_LO, icr);
	for (u32 n = 0; (lapic_read(LAPIC_ICR_LO) & ICR_BUSY) && n < POLL_LIMIT; n++)
		;
}

/* Interrupts: the boot CPU's IDT for sleep_ms, the APs' for ap_wait. */
static struct gate idt[256] __attribute__((aligned(16)));
static struct gate ap_idt[256] __attribute__((aligned(16)));
static const char *fault_name = "guest"; /* on_fault's prefix */
static struct pm_clock sleep_clock;
static u64 sleep_until;
static u32 timer_ticks_per_ms;
static void (*sleep_then)(void);

void wake_entry(void);
void fault_entry(void);
void on_wake(void) __attribute__((noreturn, used));
void on_fault(void) __attribute__((noreturn, used));

__asm__(".text\n"
	"wake_entry:\n"
	"	leaq irq_stack_top(%rip), %rsp\n"
	"	call on_wake\n"
	"fault_entry:\n"
	"	leaq irq_stack_top(%rip), %rsp\n"
	"	call on_fault\n"
	".section .data.irqstack, \"aw\", @progbits\n"
	".balign 16\n"
	"	.space 8192\n"
	"irq_stack_top:\n"
	".text\n");

static void set_gate(struct gate *t, int vec, void (*fn)(void))
{
	u64 a = (u64)fn;
	u16 cs;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	t[vec].offset_lo = (u16)a;
	t[vec].selector = cs; /* 0x10 in vmm's GDT and in the trampoline's */
	t[vec].ist = 0;
	t[vec].type_attr = 0x8e; /* present, DPL 0, 64-bit interrupt gate */
	t[vec].offset_mid = (u16)(a >> 16);
	t[vec].offset_hi = (u32)(a >> 32);
	t[vec].reserved = 0;
}

static void load_idt(struct gate *t)
{
	struct table_reg r = {256 * sizeof(struct gate) - 1, (u64)t};
	__asm__ volatile("lidt %0" : : "m"(r));
}

/* aps_start starts every AP; each calls ap_main with its APIC ID. Their
 * interrupts, from aps_wake or anywhere, re-enter ap_main through
 * ap_long, which finds the AP's stack again; an exception prints
 * "<name>: exception" and resets. */
static void aps_start(const char *name)
{
	fault_name = name;
	for (int i = 0; i < 32; i++)
		set_gate(ap_idt, i, fault_entry);
	for (int i = 32; i < 256; i++)
		set_gate(ap_idt, i, ap_long);
	memcpy((void *)TRAMPOLINE, ap_tramp, (unsigned long)(ap_tramp_end - ap_tramp));
	*(volatile u32 *)(TRAMPOLINE + (u64)(tramp_cr3 - ap_tramp)) = (u32)read_cr3();
	lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | VEC_SPURIOUS);
	send_ipi(ICR_ALL_BUT_SELF | ICR_INIT);
	wait_ms(10);
	send_ipi(ICR_ALL_BUT_SELF | ICR_STARTUP | (TRAMPOLINE >> 12));
	wait_ms(1);
	send_ipi(ICR_ALL_BUT_SELF | ICR_STARTUP | (TRAMPOLINE >> 12));
}

/* ap_enter starts ap_main on an AP: it acknowledges the interrupt that
 * brought it there and, the first time, takes the APs' IDT. */
static void ap_enter(int first)
{
	if (first) {
		load_idt(ap_idt);
		lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | VEC_SPURIOUS);
	}
	lapic_write(LAPIC_EOI, 0);
}

/* ap_wait halts until an interrupt, which re-enters ap_main. */
static void ap_wait(void) { __asm__ volatile("sti; hlt; cli" ::: "memory"); }

/* aps_wake interrupts every AP waiting in ap_wait. */
static void aps_wake(void) { send_ipi(ICR_ALL_BUT_SELF | ICR_FIXED_ASSERT | VEC_WAKE); }

static void sleep_loop(void) __attribute__((noreturn));
static void sleep_loop(void)
{
	for (;;) {
		u64 now = pm_clock_ms(&sleep_clock);
		if (now >= sleep_until)
			sleep_then();
		u64 left = sleep_until - now;
		if (left > 100)
			left = 100; /* the PM timer wraps in 4.7 s: wake well before */
		lapic_write(LAPIC_TIMER_INIT, (u32)(left * timer_ticks_per_ms + 1));
		__asm__ volatile("sti; hlt; cli" ::: "memory");
	}
}

void on_wake(void)
{
	lapic_write(LAPIC_EOI, 0);
	sleep_loop();
}

void on_fault(void)
{
	uart_puts(fault_name);
	uart_puts(": exception\n");
	reset();
}

/* sleep_ms halts this CPU for ms milliseconds of wall-clock time, then
 * calls then, which must not return. Only the local APIC timer is left to
 * wake it: the 8259's LINT0 and LINT1 are masked, so garbage an earlier
 * phase left in the PIC or PIT does not count. */
static void sleep_ms(const char *name, u64 ms, void (*then)(void)) __attribute__((noreturn));
static void sleep_ms(const char *name, u64 ms, void (*then)(void))
{
	fault_name = name;
	for (int i = 0; i < 32; i++)
		set_gate(idt, i, fault_entry);
	for (int i = 32; i < 256; i++)
		set_gate(idt, i, wake_entry);
	load_idt(idt);
	lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | VEC_SPURIOUS);
	lapic_write(LAPIC_TPR, 0);
	lapic_write(LAPIC_LVT_LINT0, LVT_MASKED);
	lapic_write(LAPIC_LVT_LINT1, LVT_MASKED);
	lapic_write(LAPIC_LVT_ERROR, LVT_MASKED);
	lapic_write(LAPIC_TIMER_DIV, TIMER_DIV_16);
	lapic_write(LAPIC_LVT_TIMER, VEC_TIMER); /* one-shot */

	/* The timer's rate is the VMM's choice: measure it. */
	lapic_write(LAPIC_TIMER_INIT, 0xffffffffu);
	wait_ms(10);
	u32 ticks = 0xffffffffu - lapic_read(LAPIC_TIMER_CUR);
	lapic_write(LAPIC_TIMER_INIT, 0);
	timer_ticks_per_ms = ticks / 10 ? ticks / 10 : 1;

	sleep_then = then;
	pm_clock_start(&sleep_clock);
	sleep_until = ms;
	sleep_loop();
}

#endif
