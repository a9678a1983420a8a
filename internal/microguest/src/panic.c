/* panic: prints a line as Linux does when it panics, then resets at once,
 * as Linux with panic=-1 does. The VMM must report a guest panic, not a
 * clean reset.
 *
 * Output:
 *   panic: about to panic
 *   Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)
 */
#include "rt.h"

int main(const u8 *boot_params)
{
	(void)boot_params;
	uart_puts("panic: about to panic\n");
	uart_puts("Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\n");
	return 0;
}
