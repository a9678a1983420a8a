/* smp: starts the second CPU as an OS does (Intel SDM vol. 3, 8.4.4.1):
 * copies a real-mode trampoline to 0x8000, sends the AP an INIT IPI and two
 * STARTUP IPIs with vector 0x08 through the local APIC's ICR, and waits for
 * the trampoline to store its initial APIC ID (CPUID leaf 1) and a flag.
 *
 * Output, with --cpus 2:
 *   smp: cpu with apic id 1 started
 */
#include "vdrv.h"

#define LAPIC 0xfee00000ul
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define ICR_INIT 0x00004500     /* INIT, level assert */
#define ICR_STARTUP 0x00004600  /* STARTUP, level assert; | vector */
#define ICR_BUSY (1u << 12)     /* delivery status: send pending */

#define TRAMPOLINE 0x8000ul      /* below the page tables at 0x9000 */
#define AP_FLAG 0x8ff0ul
#define AP_APIC_ID 0x8ff4ul

extern const u8 ap_tramp[], ap_tramp_end[];

/* The AP starts here in real mode at CS:IP = 0x0800:0000. It stores its
 * initial APIC ID (CPUID.1:EBX[31:24]), then the flag, and halts. */
__asm__(".section .rodata.tramp, \"a\"\n"
	".code16\n"
	"ap_tramp:\n"
	"	cli\n"
	"	xorw %ax, %ax\n"
	"	movw %ax, %ds\n"
	"	movl $1, %eax\n"
	"	cpuid\n"
	"	shrl $24, %ebx\n"
	"	movl %ebx, 0x8ff4\n"
	"	movb $1, 0x8ff0\n"
	"1:	hlt\n"
	"	jmp 1b\n"
	"ap_tramp_end:\n"
	".code64\n"
	".text\n");

static void lapic_write(u32 reg, u32 val) { *(volatile u32 *)(LAPIC + reg) = val; }
static u32 lapic_read(u32 reg) { return *(volatile u32 *)(LAPIC + reg); }

static void send_ipi(u32 apic_id, u32 icr)
{
	lapic_write(LAPIC_ICR_HI, apic_id << 24);
	lapic_write(LAPIC_ICR_LO, icr);
	for (u32 n = 0; (lapic_read(LAPIC_ICR_LO) & ICR_BUSY) && n < POLL_LIMIT; n++)
		;
}

static void wait_ms(u64 ms)
{
	struct pm_clock c;
	pm_clock_start(&c);
	while (pm_clock_ms(&c) < ms)
		;
}

int main(const u8 *boot_params)
{
	(void)boot_params;
	volatile u8 *flag = (volatile u8 *)AP_FLAG;
	volatile u32 *id = (volatile u32 *)AP_APIC_ID;
	memcpy((void *)TRAMPOLINE, ap_tramp, (unsigned long)(ap_tramp_end - ap_tramp));
	*flag = 0;
	*id = 0xffffffff;

	send_ipi(1, ICR_INIT);
	wait_ms(10);
	send_ipi(1, ICR_STARTUP | (TRAMPOLINE >> 12));
	wait_ms(1);
	send_ipi(1, ICR_STARTUP | (TRAMPOLINE >> 12));

	struct pm_clock c;
	pm_clock_start(&c);
	while (!*flag && pm_clock_ms(&c) < 2000)
		;
	if (!*flag) {
		uart_puts("smp: cpu 1 did not start\n");
		return 1;
	}
	uart_puts("smp: cpu with apic id ");
	uart_dec(*id);
	uart_puts(" started\n");
	return 0;
}
