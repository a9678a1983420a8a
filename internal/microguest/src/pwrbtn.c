/* pwrbtn: handles the ACPI power button as an operating system would:
 * enables PWRBTN_EN in PM1a_EN, prints "pwrbtn: ready", waits for
 * PWRBTN_STS in PM1a_STS (the VMM sets it when asked to stop, and raises
 * the SCI), clears it (write 1), prints "pwrbtn: pressed" and powers off
 * through PM1a_CNT with SLP_TYP=5 (\_S5) and SLP_EN.
 *
 * Output:
 *   pwrbtn: ready
 *   pwrbtn: pressed
 */
#include "rt.h"

#define PM1A_STS 0x600 /* vmm's FADT PM1a_EVT_BLK (the acpi guest checks it) */
#define PM1A_EN 0x602
#define PM1A_CNT 0x604
#define PWRBTN (1u << 8)

static inline u16 inw(u16 port)
{
	u16 v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

int main(const u8 *boot_params)
{
	(void)boot_params;
	outw(PM1A_EN, PWRBTN);
	uart_puts("pwrbtn: ready\n");
	while (!(inw(PM1A_STS) & PWRBTN))
		__asm__ volatile("pause");
	outw(PM1A_STS, PWRBTN);
	uart_puts("pwrbtn: pressed\n");
	outw(PM1A_CNT, (5 << 10) | (1 << 13));
	return 1;
}
