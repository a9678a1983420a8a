/* cpuid: prints the CPUID registers the compatibility profile edits, so a
 * test can check what the guest is offered. */
#include "rt.h"

static void cpuid(u32 leaf, u32 sub, u32 *a, u32 *b, u32 *c, u32 *d)
{
	__asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(sub));
}

static void show(const char *name, u32 v)
{
	uart_puts(name);
	uart_puts("=");
	uart_hex(v);
	uart_puts("\n");
}

int main(const u8 *boot_params)
{
	u32 a, b, c, d;
	(void)boot_params;
	cpuid(1, 0, &a, &b, &c, &d);
	show("cpuid.1.ecx", c);
	cpuid(7, 0, &a, &b, &c, &d);
	show("cpuid.7.ebx", b);
	show("cpuid.7.ecx", c);
	cpuid(0xd, 0, &a, &b, &c, &d);
	show("cpuid.d.eax", a);
	cpuid(0x80000001, 0, &a, &b, &c, &d);
	show("cpuid.80000001.edx", d);
	return 0;
}
