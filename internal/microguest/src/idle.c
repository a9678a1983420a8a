/* idle: prints "idle: ready", touches N MiB of its memory (the kernel
 * command line's "touch=N", default 0), prints "idle: touched N MiB", then
 * halts with interrupts off: its vCPU sleeps in KVM and the VM costs no CPU
 * until it is stopped. For tests and measurements of many VMs at once.
 */
#include "rt.h"

#define TOUCH_BASE 0x1000000ul /* 16 MiB: above the kernel image and tables */

static u64 touch_mib(const u8 *bp)
{
	u32 ptr = *(const u32 *)(bp + 0x228); /* boot_params.hdr.cmd_line_ptr */
	const char *cl = (const char *)(u64)ptr;
	for (const char *p = cl; p && *p; p++) {
		const char *w = "touch=";
		const char *q = p;
		while (*w && *q == *w)
			q++, w++;
		if (!*w) {
			u64 n = 0;
			while (*q >= '0' && *q <= '9')
				n = n * 10 + (u64)(*q++ - '0');
			return n;
		}
	}
	return 0;
}

int main(const u8 *boot_params)
{
	u64 mib = touch_mib(boot_params);
	uart_puts("idle: ready\n");
	for (u64 a = TOUCH_BASE; a < TOUCH_BASE + (mib << 20); a += 4096)
		*(volatile u8 *)a = 1;
	uart_puts("idle: touched ");
	uart_dec(mib);
	uart_puts(" MiB\n");
	for (;;)
		__asm__ volatile("cli; hlt");
}
