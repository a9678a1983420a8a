/* benchexit: the cost of a vCPU exit to the VMM and back. It makes n
 * (the kernel command line's "n=N", default 20000) one-byte writes to port
 * 0x80 (the POST-code port: nothing in vmm, QEMU's microvm or a no-op
 * device in q35 handles it, so each write is an exit and no device work),
 * then n 32-bit writes to 0xd0000000 (in the 32-bit MMIO hole, where no
 * VMM puts anything), each phase between begin and end lines (bench.h):
 *
 *   benchexit: n=20000 pm=1
 *   benchexit: pio begin
 *   benchexit: pio end n=20000 bytes=0 us=412345 (48502/s)
 *   benchexit: mmio begin
 *   benchexit: mmio end n=20000 bytes=0 us=512345 (39035/s)
 *   benchexit: done
 *
 * Every 4096 writes it reads the PM timer once (one more exit, 0.02 %).
 */
#include "bench.h"

#define POST_PORT 0x80
#define NOBODY_MMIO 0xd0000000ul
#define TICK_EVERY 4096
#define GUEST "benchexit"

static void pio(u64 n, struct bench_clock *c)
{
	for (u64 i = 0; i < n; i++) {
		outb(POST_PORT, (u8)i);
		if (i % TICK_EVERY == TICK_EVERY - 1)
			bench_tick(c);
	}
}

static void mmio(u64 n, struct bench_clock *c)
{
	volatile u32 *p = (volatile u32 *)NOBODY_MMIO;
	for (u64 i = 0; i < n; i++) {
		*p = (u32)i;
		if (i % TICK_EVERY == TICK_EVERY - 1)
			bench_tick(c);
	}
}

int main(const u8 *boot_params)
{
	u64 n = cmdline_num(boot_params, "n=", 20000);
	struct bench_clock c = {.have = bench_has_pm()};

	uart_puts(GUEST ": n=");
	uart_dec(n);
	uart_puts(c.have ? " pm=1\n" : " pm=0\n");

	bench_begin(&c, GUEST, "pio");
	pio(n, &c);
	bench_end(&c, GUEST, "pio", n, 0);

	bench_begin(&c, GUEST, "mmio");
	mmio(n, &c);
	bench_end(&c, GUEST, "mmio", n, 0);

	uart_puts(GUEST ": done\n");
	bench_flush();
	return 0;
}
