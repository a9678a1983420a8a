/* reset: announces itself and resets through the i8042 (exit status 0). */
#include "rt.h"

int main(const u8 *boot_params)
{
	(void)boot_params;
	uart_puts("reset: resetting via i8042\n");
	reset();
}
