/* hello: the smallest useful guest, and the README's demo. */
#include "rt.h"

int main(const u8 *boot_params)
{
	(void)boot_params;
	uart_puts("hello from a vmm micro-guest\n");
	return 0;
}
