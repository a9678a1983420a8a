/* pci: enumerates bus 0 through configuration mechanism #1 (0xCF8/0xCFC)
 * as a BIOS or Linux does, prints every function that answers, then
 * resets.
 *
 * Output:
 *   pci: device 0 vendor=0x8086 device=0x... class=0x60000
 *   pci: 1 device(s) on bus 0
 */
#include "rt.h"

static u32 cfg_read(u32 dev, u32 reg)
{
	outl(0xcf8, 0x80000000u | (dev << 11) | (reg & 0xfc));
	return inl(0xcfc);
}

int main(const u8 *boot_params)
{
	u32 found = 0;
	(void)boot_params;
	for (u32 dev = 0; dev < 32; dev++) {
		u32 id = cfg_read(dev, 0);
		if ((id & 0xffff) == 0xffff)
			continue;
		found++;
		uart_puts("pci: device ");
		uart_dec(dev);
		uart_puts(" vendor=");
		uart_hex(id & 0xffff);
		uart_puts(" device=");
		uart_hex(id >> 16);
		uart_puts(" class=");
		uart_hex(cfg_read(dev, 8) >> 8);
		uart_puts("\n");
	}
	uart_puts("pci: ");
	uart_dec(found);
	uart_puts(" device(s) on bus 0\n");
	return 0;
}
