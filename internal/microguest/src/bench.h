/*
 * bench: what the benchmark micro-guests share. A guest runs phases of
 * work and brackets each with two lines on COM1, so the host can time the
 * phase from when the lines arrive:
 *
 *   <guest>: <phase> begin
 *   <guest>: <phase> end n=<ops> bytes=<bytes> us=<microseconds>
 *
 * us is the guest's own measurement with the ACPI PM timer, present only
 * when the machine has one at 0x608 (vmm and QEMU q35 do; QEMU microvm does
 * not); bytes is 0 where a phase moves no data. After each line the guest
 * writes the UART's IER, which makes vmm hand buffered console output to
 * the host at once (and is harmless elsewhere), so a line's arrival is the
 * moment it was printed.
 */
#ifndef MICROGUEST_BENCH_H
#define MICROGUEST_BENCH_H

#include "rt.h"

/* Every function here is used by some guest, not by all. */
#define BENCH static __attribute__((unused))

#define BENCH_COM1_IER 0x3f9
#define BENCH_PM_TMR 0x608
#define BENCH_PM_HZ 3579545u
#define BENCH_PM_MASK 0xffffffu /* a 24-bit counter: it wraps every 4.7 s */

/* cmdline_num returns the number after "key=" (key given with its '=') on
 * the kernel command line, or def when it is absent or not a number. */
BENCH u64 cmdline_num(const u8 *bp, const char *key, u64 def)
{
	if (!bp)
		return def;
	const char *cl = (const char *)(u64)bp32(bp, BP_CMD_LINE_PTR);
	if (!cl)
		return def;
	for (const char *p = cl; *p; p++) {
		if (p != cl && p[-1] != ' ')
			continue;
		const char *k = key, *q = p;
		while (*k && *q == *k)
			q++, k++;
		if (*k || *q < '0' || *q > '9')
			continue;
		u64 n = 0;
		while (*q >= '0' && *q <= '9')
			n = n * 10 + (u64)(*q++ - '0');
		return n;
	}
	return def;
}

/* A phase's clock: PM timer ticks, accumulated across the counter's wraps
 * as long as bench_tick runs more often than every 4.7 s. */
struct bench_clock {
	int have;  /* the machine has a PM timer */
	u32 last;  /* the counter when last read */
	u64 ticks; /* ticks since bench_begin */
};

/* bench_has_pm reports whether port 0x608 counts: a missing timer reads as
 * all-ones (or not at all) and does not move between reads. */
BENCH int bench_has_pm(void)
{
	u32 a = inl(BENCH_PM_TMR);
	if (a == 0xffffffffu)
		return 0;
	for (int i = 0; i < 64; i++)
		if (inl(BENCH_PM_TMR) != a)
			return 1;
	return 0;
}

BENCH void bench_flush(void) { outb(BENCH_COM1_IER, 0); }

BENCH void bench_line(const char *guest, const char *phase, const char *what)
{
	uart_puts(guest);
	uart_puts(": ");
	uart_puts(phase);
	uart_puts(what);
}

/* bench_begin prints the begin line and starts the clock. */
BENCH void bench_begin(struct bench_clock *c, const char *guest, const char *phase)
{
	bench_line(guest, phase, " begin\n");
	bench_flush();
	c->ticks = 0;
	if (c->have)
		c->last = inl(BENCH_PM_TMR) & BENCH_PM_MASK;
}

/* bench_tick folds the timer into c; call it often enough not to miss a
 * wrap (costs one port read, i.e. one exit). */
BENCH void bench_tick(struct bench_clock *c)
{
	if (!c->have)
		return;
	u32 now = inl(BENCH_PM_TMR) & BENCH_PM_MASK;
	c->ticks += (now - c->last) & BENCH_PM_MASK;
	c->last = now;
}

/* bench_end stops the clock and prints the end line with the phase's
 * counts and, with a PM timer, its time and rate. */
BENCH void bench_end(struct bench_clock *c, const char *guest, const char *phase, u64 n, u64 bytes)
{
	bench_tick(c);
	bench_line(guest, phase, " end n=");
	uart_dec(n);
	uart_puts(" bytes=");
	uart_dec(bytes);
	if (c->have) {
		u64 us = c->ticks * 1000000 / BENCH_PM_HZ;
		uart_puts(" us=");
		uart_dec(us);
		if (us) {
			uart_puts(" (");
			uart_dec(n * 1000000 / us);
			uart_puts("/s)");
		}
	}
	uart_puts("\n");
	bench_flush();
}

#endif
