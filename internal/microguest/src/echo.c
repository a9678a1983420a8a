/*
 * echo: prints "ready", reads one line from the UART by polling LSR.DR and
 * prints it back as "echo: <line>". Proves console input reaches the guest.
 */
#include "rt.h"

#define LINE_MAX 256

int main(const u8 *boot_params)
{
	static char line[LINE_MAX];
	int n = 0;

	(void)boot_params;
	uart_puts("ready\n");
	for (;;) {
		char c = uart_getc();

		if (c == '\n' || c == '\r')
			break;
		if (n < LINE_MAX - 1)
			line[n++] = c;
	}
	line[n] = 0;
	uart_puts("echo: ");
	uart_puts(line);
	uart_putc('\n');
	return 0;
}
