/*
 * unhandled: touches a port and an MMIO address no device claims. The VMM
 * must survive, return all-ones on reads, drop writes and count them:
 *
 *	unhandled: pio 0x5555 = 0xff
 *	unhandled: mmio 0xd0000000 = 0xffffffff
 *	unhandled: done
 */
#include "rt.h"

#define NOBODY_PORT 0x5555
#define NOBODY_MMIO 0xd0000000ul /* in the 32-bit MMIO hole, no BAR there */

int main(const u8 *boot_params)
{
	volatile u32 *mmio = (volatile u32 *)NOBODY_MMIO;
	u32 v;

	(void)boot_params;
	uart_puts("unhandled: pio ");
	uart_hex(NOBODY_PORT);
	uart_puts(" = ");
	uart_hex(inb(NOBODY_PORT));
	uart_putc('\n');
	outb(NOBODY_PORT, 0x42);

	v = *mmio;
	uart_puts("unhandled: mmio ");
	uart_hex(NOBODY_MMIO);
	uart_puts(" = ");
	uart_hex(v);
	uart_putc('\n');
	*mmio = 0x12345678;

	uart_puts("unhandled: done\n");
	return 0;
}
