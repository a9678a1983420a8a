#include "rt.h"

/* 8250 UART on COM1 (port 0x3f8). */
#define COM1 0x3f8
#define UART_THR 0
#define UART_RBR 0
#define UART_LSR 5
#define LSR_DR 0x01
#define LSR_THRE 0x20

/* i8042: writing 0xfe to the command port pulses the CPU reset line. */
#define I8042_CMD 0x64
#define I8042_RESET 0xfe

void uart_putc(char c)
{
	while (!(inb(COM1 + UART_LSR) & LSR_THRE))
		;
	outb(COM1 + UART_THR, (u8)c);
}

void uart_puts(const char *s)
{
	while (*s)
		uart_putc(*s++);
}

void uart_hex(u64 v)
{
	char buf[16];
	int n = 0;

	do {
		buf[n++] = "0123456789abcdef"[v & 0xf];
		v >>= 4;
	} while (v);
	uart_puts("0x");
	while (n)
		uart_putc(buf[--n]);
}

void uart_dec(u64 v)
{
	char buf[20];
	int n = 0;

	do {
		buf[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		uart_putc(buf[--n]);
}

int uart_poll(void)
{
	if (!(inb(COM1 + UART_LSR) & LSR_DR))
		return -1;
	return inb(COM1 + UART_RBR);
}

char uart_getc(void)
{
	while (!(inb(COM1 + UART_LSR) & LSR_DR))
		;
	return (char)inb(COM1 + UART_RBR);
}

void reset(void)
{
	outb(I8042_CMD, I8042_RESET);
	for (;;)
		__asm__ volatile("hlt");
}

/* gcc may emit calls to these even with -ffreestanding. */
void *memset(void *d, int c, unsigned long n)
{
	u8 *p = d;

	while (n--)
		*p++ = (u8)c;
	return d;
}

void *memcpy(void *d, const void *s, unsigned long n)
{
	u8 *p = d;
	const u8 *q = s;

	while (n--)
		*p++ = *q++;
	return d;
}

u32 fnv1a(const u8 *p, u64 n)
{
	u32 h = 2166136261u;
	for (u64 i = 0; i < n; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

int cmdline_has(const char *cl, const char *word)
{
	for (const char *p = cl; p && *p; p++) {
		if (p != cl && p[-1] != ' ')
			continue;
		const char *w = word, *q = p;
		while (*w && *q == *w)
			q++, w++;
		if (!*w && (*q == ' ' || !*q))
			return 1;
	}
	return 0;
}
