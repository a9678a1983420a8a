/*
 * triplefault: loads an IDT with limit 0 and executes ud2. The #UD cannot be
 * delivered, nor the #GP or #DF that follow, so the CPU shuts down and KVM
 * reports KVM_EXIT_SHUTDOWN (the VMM's triple-fault status).
 */
#include "rt.h"

int main(const u8 *boot_params)
{
	static const struct table_reg empty = { 0, 0 };

	(void)boot_params;
	uart_puts("triplefault: faulting now\n");
	__asm__ volatile("lidt %0\n\tud2" : : "m"(empty));
	uart_puts("triplefault: still running\n");
	return 1;
}
