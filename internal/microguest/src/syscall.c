/*
 * syscall: checks SYSCALL and SYSRET between CPL 3 and CPL 0 the way a Linux
 * kernel uses them. It loads its own GDT (Linux's layout: kernel code64 0x08,
 * kernel data 0x10, user code32 0x18, user data 0x20, user code64 0x28, a
 * 64-bit TSS at 0x30 whose RSP0 is a kernel stack and whose I/O bitmap allows
 * every port) and IDT (vectors 0-31 print their frame and reset, without
 * iretq), gives the 2 MiB page holding the image the U bit and maps it again
 * 2 MiB higher without it (the "alias", as Linux's entry code is mapped), sets
 * EFER.SCE, STAR, LSTAR and SFMASK as Linux does, and enters CPL 3 with
 * iretq, IOPL 3. User code runs SYSCALL with RAX 42; syscall_entry prints what
 * it sees, reads CR0 (privileged: a #GP at CPL 3), points LSTAR at the alias
 * and returns with SYSRETQ; user code prints its CS and runs SYSCALL with
 * RAX 60, whose entry (through the alias) resets. On a CPU that does all of
 * this the output is, flags and CR0 varying:
 *
 *	syscall: gdt
 *	syscall: idt
 *	syscall: user pages
 *	syscall: msrs
 *	syscall: iretq to cpl 3
 *	user: cs=0x2b, syscall rax=42
 *	syscall: entered cs=0x8 ss=0x10 rcx=after_syscall1 r11=0x30.. rax=0x2a
 *	syscall: cr0=0x...
 *	syscall: lstar=syscall_entry@alias, sysretq
 *	sysret: back in user mode cs=0x2b
 *	user: syscall rax=60
 *	syscall: entered cs=0x8 ss=0x10 rcx=after_syscall2 r11=0x30.. rax=0x3c
 *	syscall: exit, resetting
 *
 * An exception prints one line and resets:
 *
 *	exception: vector=V error=E cs=C rip=R rflags=F rsp=S ss=S handler-cs=H cr2=A
 *
 * where R and A are names (syscall_entry, cr0_probe, syscall_entry@alias,
 * ...) when they are labelled addresses. One exception is a probe rather
 * than the end: a #GP at cr0_probe means syscall_entry ran at CPL 3; the
 * handler, at CPL 0, then says so, points LSTAR at the alias and runs SYSRETQ
 * itself back to after_syscall1, so SYSRET is checked from a real CPL 0.
 * On kvm_pvm (e2e/syscall_test.go) the output is:
 *
 *	... (the five set-up lines)
 *	user: cs=0x33, syscall rax=42
 *	syscall: entered cs=0x33 ss=0x2b rcx=after_syscall1 r11=0x246 rax=0x2a
 *	exception: vector=13 error=0x0 cs=0x2b rip=cr0_probe rflags=0x10097 rsp=0x109000 ss=0x23 handler-cs=0x8 cr2=0x0
 *	exception: syscall_entry ran at cpl 3; lstar=syscall_entry@alias, sysretq from this handler
 *	sysret: back in user mode cs=0x33
 *	user: syscall rax=60
 *	exception: vector=14 error=0x5 cs=0x2b rip=syscall_entry@alias rflags=0x10046 rsp=0x107000 ss=0x23 handler-cs=0x8 cr2=syscall_entry@alias
 *
 * User mode there runs natively in the host's ring 3 (MOV from CS reads the
 * host's 0x33/0x2b, RFLAGS is IF=1 IOPL=0 whatever iretq popped, so port I/O
 * goes through the TSS bitmap); SYSCALL jumps to LSTAR with RCX, R11 and
 * SFMASK right but stays at CPL 3; SYSRETQ from CPL 0 works.
 */
#include "rt.h"

#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_UCODE32 0x18
#define SEL_UDATA 0x20
#define SEL_UCODE 0x28
#define SEL_TSS 0x30

#define MSR_EFER 0xC0000080
#define MSR_STAR 0xC0000081
#define MSR_LSTAR 0xC0000082
#define MSR_SFMASK 0xC0000084
#define EFER_SCE 1UL

#define PTE_P 0x1UL
#define PTE_U 0x4UL
#define PTE_PS 0x80UL
#define PTE_ADDR 0x000FFFFFFFFFF000UL

#define RFLAGS_IOPL3 0x3000UL
#define RFLAGS_FIXED 0x2UL

struct tss64 {
	u32 reserved0;
	u64 rsp[3];
	u64 reserved1;
	u64 ist[7];
	u64 reserved2;
	u16 reserved3;
	u16 iopb;
	u8 iomap[8192 + 1]; /* all ports allowed, then the 0xFF terminator */
} __attribute__((packed));

#define GATE_INTERRUPT 0x8E /* P=1, DPL=0, 64-bit interrupt gate */

static u64 gdt[8] __attribute__((aligned(16)));
static struct tss64 tss __attribute__((aligned(16)));
static struct gate idt[32] __attribute__((aligned(16)));

static u8 kernel_stack[8192] __attribute__((aligned(16)));	 /* TSS.RSP0 */
static u8 syscall_stack[8192] __attribute__((aligned(16))); /* syscall_entry */
static u8 user_stack[8192] __attribute__((aligned(16)));

/* Read by the assembly below. */
u64 syscall_stack_top;
u64 saved_user_rsp;

extern const u64 exc_stubs[32];
extern const char syscall_entry[], cr0_probe[], sysret_insn[];
extern const char syscall1_insn[], after_syscall1[];
extern const char syscall2_insn[], after_syscall2[];
extern const char user_entry[], handler_sysret[];

/*
 * ALIAS maps the image's 2 MiB page a second time, 2 MiB higher, without the
 * U bit: the second SYSCALL enters syscall_entry there, as Linux's entry
 * code is mapped, so only CPL 0 can fetch it.
 */
#define ALIAS 0x200000UL

void sysret_to(u64 rip, u64 rsp, u64 rflags) __attribute__((noreturn));

/*
 * Exception stubs: each pushes a zero in place of an error code where the
 * CPU pushes none, then the vector, and jumps to exc_common with the frame
 * vector, error, RIP, CS, RFLAGS, RSP, SS from RSP up.
 */
__asm__(
	"	.text\n"
	"	.macro exc_stub v, err\n"
	"exc_\\v:\n"
	"	.if \\err == 0\n"
	"	pushq	$0\n"
	"	.endif\n"
	"	pushq	$\\v\n"
	"	jmp	exc_common\n"
	"	.endm\n"
	"	.irp v, 0,1,2,3,4,5,6,7,9,15,16,18,19,20,22,23,24,25,26,27,28,31\n"
	"	exc_stub \\v, 0\n"
	"	.endr\n"
	"	.irp v, 8,10,11,12,13,14,17,21,29,30\n"
	"	exc_stub \\v, 1\n"
	"	.endr\n"
	"exc_common:\n"
	"	movq	%rsp, %rdi\n"
	"	call	exc_report\n"
	"1:	hlt\n"
	"	jmp	1b\n"
	"	.section .rodata\n"
	"	.balign 8\n"
	"	.globl	exc_stubs\n"
	"exc_stubs:\n"
	"	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
	"	.quad	exc_\\v\n"
	"	.endr\n"
	"	.text\n");

/*
 * syscall_entry: LSTAR. Saves the user RSP, switches to syscall_stack and
 * calls syscall_report(rax, rcx, r11); if that returns, reads CR0, prints it
 * and returns to user mode with SYSRETQ (RCX and R11 as SYSCALL left them).
 */
__asm__(
	"	.text\n"
	"	.globl	syscall_entry, cr0_probe, sysret_insn\n"
	"syscall_entry:\n"
	"	movq	%rsp, saved_user_rsp(%rip)\n"
	"	movq	syscall_stack_top(%rip), %rsp\n"
	"	pushq	%rcx\n"
	"	pushq	%r11\n"
	"	movq	%rax, %rdi\n"
	"	movq	%rcx, %rsi\n"
	"	movq	%r11, %rdx\n"
	"	call	syscall_report\n"
	"cr0_probe:\n"
	"	movq	%cr0, %rdi\n"
	"	call	cr0_report\n"
	"	popq	%r11\n"
	"	popq	%rcx\n"
	"	movq	saved_user_rsp(%rip), %rsp\n"
	"sysret_insn:\n"
	"	sysretq\n");

/* sysret_to(rip, rsp, rflags): SYSRETQ with RCX, RSP and R11 set. */
__asm__(
	"	.text\n"
	"	.globl	sysret_to, handler_sysret\n"
	"sysret_to:\n"
	"	movq	%rdi, %rcx\n"
	"	movq	%rsi, %rsp\n"
	"	movq	%rdx, %r11\n"
	"handler_sysret:\n"
	"	sysretq\n");

/*
 * user_entry: where iretq lands at CPL 3, on user_stack. Calls user_main,
 * which does not return.
 */
__asm__(
	"	.text\n"
	"	.globl	user_entry\n"
	"user_entry:\n"
	"	call	user_main\n"
	"1:	jmp	1b\n");

static u16 read_cs(void)
{
	u16 cs;

	__asm__ volatile("movw %%cs, %0" : "=r"(cs));
	return cs;
}

static u16 read_ss(void)
{
	u16 ss;

	__asm__ volatile("movw %%ss, %0" : "=r"(ss));
	return ss;
}

static u64 rdmsr(u32 msr)
{
	u32 lo, hi;

	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return (u64)hi << 32 | lo;
}

static void wrmsr(u32 msr, u64 v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((u32)v), "d"((u32)(v >> 32)));
}

/* uart_addr prints a labelled address by name, any other in hex. */
static void uart_addr(u64 a)
{
	static const struct {
		const char *name;
		const char *addr;
	} syms[] = {
		{ "syscall_entry", syscall_entry },
		{ "cr0_probe", cr0_probe },
		{ "sysret_insn", sysret_insn },
		{ "syscall1_insn", syscall1_insn },
		{ "after_syscall1", after_syscall1 },
		{ "syscall2_insn", syscall2_insn },
		{ "after_syscall2", after_syscall2 },
		{ "user_entry", user_entry },
		{ "handler_sysret", handler_sysret },
	};

	if (a == (u64)syscall_entry + ALIAS) {
		uart_puts("syscall_entry@alias");
		return;
	}

	for (unsigned i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		if (a == (u64)syms[i].addr) {
			uart_puts(syms[i].name);
			return;
		}
	}
	uart_hex(a);
}

void exc_report(const u64 *f) __attribute__((noreturn, used));
void exc_report(const u64 *f)
{
	u64 cr2;

	uart_puts("exception: vector=");
	uart_dec(f[0]);
	uart_puts(" error=");
	uart_hex(f[1]);
	uart_puts(" cs=");
	uart_hex(f[3]);
	uart_puts(" rip=");
	uart_addr(f[2]);
	uart_puts(" rflags=");
	uart_hex(f[4]);
	uart_puts(" rsp=");
	uart_hex(f[5]);
	uart_puts(" ss=");
	uart_hex(f[6]);
	uart_puts(" handler-cs=");
	uart_hex(read_cs());
	uart_puts(" cr2=");
	__asm__ volatile("movq %%cr2, %0" : "=r"(cr2));
	uart_addr(cr2);
	uart_putc('\n');
	if (f[0] == 13 && f[2] == (u64)cr0_probe) {
		/*
		 * syscall_entry ran at CPL 3. This handler runs at CPL 0:
		 * check SYSRETQ from here, back after the first SYSCALL.
		 */
		wrmsr(MSR_LSTAR, (u64)syscall_entry + ALIAS);
		uart_puts("exception: syscall_entry ran at cpl 3; lstar=syscall_entry@alias, sysretq from this handler\n");
		sysret_to((u64)after_syscall1, saved_user_rsp, RFLAGS_IOPL3 | RFLAGS_FIXED);
	}
	reset();
}

void syscall_report(u64 rax, u64 rcx, u64 r11) __attribute__((used));
void syscall_report(u64 rax, u64 rcx, u64 r11)
{
	uart_puts("syscall: entered cs=");
	uart_hex(read_cs());
	uart_puts(" ss=");
	uart_hex(read_ss());
	uart_puts(" rcx=");
	uart_addr(rcx);
	uart_puts(" r11=");
	uart_hex(r11);
	uart_puts(" rax=");
	uart_hex(rax);
	uart_putc('\n');
	if (rax == 60) {
		uart_puts("syscall: exit, resetting\n");
		reset();
	}
}

void cr0_report(u64 cr0) __attribute__((used));
void cr0_report(u64 cr0)
{
	uart_puts("syscall: cr0=");
	uart_hex(cr0);
	uart_putc('\n');
	wrmsr(MSR_LSTAR, (u64)syscall_entry + ALIAS);
	uart_puts("syscall: lstar=syscall_entry@alias, sysretq\n");
}

void user_main(void) __attribute__((noreturn, used));
void user_main(void)
{
	u64 rax;

	uart_puts("user: cs=");
	uart_hex(read_cs());
	uart_puts(", syscall rax=42\n");
	rax = 42;
	__asm__ volatile(".globl syscall1_insn, after_syscall1\n"
			 "syscall1_insn:\n\t"
			 "syscall\n"
			 "after_syscall1:"
			 : "+a"(rax)
			 :
			 : "rcx", "r11", "memory");
	uart_puts("sysret: back in user mode cs=");
	uart_hex(read_cs());
	uart_putc('\n');
	uart_puts("user: syscall rax=60\n");
	rax = 60;
	__asm__ volatile(".globl syscall2_insn, after_syscall2\n"
			 "syscall2_insn:\n\t"
			 "syscall\n"
			 "after_syscall2:"
			 : "+a"(rax)
			 :
			 : "rcx", "r11", "memory");
	uart_puts("user: second syscall returned\n");
	for (;;)
		;
}

static u64 seg(u64 access, u64 flags)
{
	/* base 0, limit 0xFFFFF; access byte at bits 40-47, flags at 52-55. */
	return 0xFFFFUL | access << 40 | 0xFUL << 48 | flags << 52;
}

static void load_gdt(void)
{
	u64 base = (u64)&tss;
	u64 limit = sizeof(tss) - 1;
	struct table_reg gdtr = { sizeof(gdt) - 1, (u64)gdt };

	uart_puts("syscall: gdt\n");
	gdt[0] = 0;
	gdt[SEL_KCODE / 8] = seg(0x9A, 0xA);	 /* P, DPL0, code exec/read; G, L */
	gdt[SEL_KDATA / 8] = seg(0x92, 0xC);	 /* P, DPL0, data r/w; G, D/B */
	gdt[SEL_UCODE32 / 8] = seg(0xFA, 0xC); /* P, DPL3, code; G, D */
	gdt[SEL_UDATA / 8] = seg(0xF2, 0xC);	 /* P, DPL3, data r/w; G, D/B */
	gdt[SEL_UCODE / 8] = seg(0xFA, 0xA);	 /* P, DPL3, code; G, L */
	gdt[SEL_TSS / 8] = (limit & 0xFFFF) | (base & 0xFFFFFF) << 16 | 0x89UL << 40 |
			   (limit >> 16 & 0xF) << 48 | (base >> 24 & 0xFF) << 56;
	gdt[SEL_TSS / 8 + 1] = base >> 32;

	tss.rsp[0] = (u64)(kernel_stack + sizeof(kernel_stack));
	tss.iopb = __builtin_offsetof(struct tss64, iomap);
	tss.iomap[8192] = 0xFF;
	syscall_stack_top = (u64)(syscall_stack + sizeof(syscall_stack));

	__asm__ volatile("lgdt %0\n\t"
			 "pushq %1\n\t"
			 "leaq 1f(%%rip), %%rax\n\t"
			 "pushq %%rax\n\t"
			 "lretq\n"
			 "1:\n\t"
			 "movw %w2, %%ax\n\t"
			 "movw %%ax, %%ds\n\t"
			 "movw %%ax, %%es\n\t"
			 "movw %%ax, %%ss\n\t"
			 "ltr %w3"
			 :
			 : "m"(gdtr), "i"((u64)SEL_KCODE), "r"((u64)SEL_KDATA), "r"((u64)SEL_TSS)
			 : "rax", "memory");
}

static void load_idt(void)
{
	struct table_reg idtr = { sizeof(idt) - 1, (u64)idt };

	uart_puts("syscall: idt\n");
	for (int v = 0; v < 32; v++) {
		u64 h = exc_stubs[v];

		idt[v].offset_lo = (u16)h;
		idt[v].selector = SEL_KCODE;
		idt[v].ist = 0;
		idt[v].type_attr = GATE_INTERRUPT;
		idt[v].offset_mid = (u16)(h >> 16);
		idt[v].offset_hi = (u32)(h >> 32);
		idt[v].reserved = 0;
	}
	__asm__ volatile("lidt %0" : : "m"(idtr) : "memory");
}

/* user_pages sets U in the paging entries that map the image (one 2 MiB page). */
static void user_pages(void)
{
	u64 cr3, *pml4, *pdpt, *pd;
	u64 va = (u64)user_entry;

	uart_puts("syscall: user pages\n");
	__asm__ volatile("movq %%cr3, %0" : "=r"(cr3));
	pml4 = (u64 *)(cr3 & PTE_ADDR);
	pml4[va >> 39 & 511] |= PTE_U;
	pdpt = (u64 *)(pml4[va >> 39 & 511] & PTE_ADDR);
	pdpt[va >> 30 & 511] |= PTE_U;
	pd = (u64 *)(pdpt[va >> 30 & 511] & PTE_ADDR);
	if (!(pd[va >> 21 & 511] & PTE_PS) || (va >> 21) != ((u64)(user_stack + sizeof(user_stack)) >> 21)) {
		uart_puts("syscall: image not in one 2 MiB page\n");
		reset();
	}
	pd[va >> 21 & 511] |= PTE_U;
	pd[(va + ALIAS) >> 21 & 511] = pd[va >> 21 & 511] & ~PTE_U;
	__asm__ volatile("movq %0, %%cr3" : : "r"(cr3) : "memory");
}

static void set_msrs(void)
{
	uart_puts("syscall: msrs\n");
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE);
	wrmsr(MSR_STAR, (u64)(SEL_UCODE32 | 3) << 48 | (u64)SEL_KCODE << 32);
	wrmsr(MSR_LSTAR, (u64)syscall_entry);
	wrmsr(MSR_SFMASK, 0x200);
}

static void __attribute__((noreturn)) enter_user(void)
{
	uart_puts("syscall: iretq to cpl 3\n");
	__asm__ volatile("pushq %0\n\t" /* SS */
			 "pushq %1\n\t" /* RSP */
			 "pushq %2\n\t" /* RFLAGS */
			 "pushq %3\n\t" /* CS */
			 "pushq %4\n\t" /* RIP */
			 "iretq"
			 :
			 : "i"((u64)(SEL_UDATA | 3)), "r"((u64)(user_stack + sizeof(user_stack))),
			   "i"(RFLAGS_IOPL3 | RFLAGS_FIXED), "i"((u64)(SEL_UCODE | 3)), "r"((u64)user_entry)
			 : "memory");
	__builtin_unreachable();
}

int main(const u8 *boot_params)
{
	(void)boot_params;
	load_gdt();
	load_idt();
	user_pages();
	set_msrs();
	enter_user();
}
