/*
 * bootinfo: reports what the VMM put in boot_params, one fact per line, so a
 * host test can compare it with what it asked for:
 *
 *	bootinfo: begin
 *	cmdline: [<command line>]
 *	e820: addr=0x<hex> size=0x<hex> type=<dec>      (one line per entry)
 *	initrd: addr=0x<hex> size=0x<hex> fnv1a=0x<hex>
 *	bootinfo: end
 *
 * The brackets keep leading and trailing spaces visible. fnv1a is FNV-1a-32
 * over the initrd bytes: cheap per byte for an emulated CPU.
 */
#include "rt.h"

static u64 join32(u32 lo, u32 hi) { return (u64)hi << 32 | lo; }

static void print_cmdline(const u8 *bp)
{
	u64 ptr = join32(bp32(bp, BP_CMD_LINE_PTR), bp32(bp, BP_EXT_CMD_LINE_PTR));

	uart_puts("cmdline: [");
	if (ptr)
		uart_puts((const char *)ptr);
	uart_puts("]\n");
}

static void print_e820(const u8 *bp)
{
	const struct e820_entry *e = (const struct e820_entry *)(bp + BP_E820_TABLE);
	u32 n = bp8(bp, BP_E820_ENTRIES);

	for (u32 i = 0; i < n; i++) {
		uart_puts("e820: addr=");
		uart_hex(e[i].addr);
		uart_puts(" size=");
		uart_hex(e[i].size);
		uart_puts(" type=");
		uart_dec(e[i].type);
		uart_putc('\n');
	}
}

static void print_initrd(const u8 *bp)
{
	u64 addr = join32(bp32(bp, BP_RAMDISK_IMAGE), bp32(bp, BP_EXT_RAMDISK_IMAGE));
	u64 size = join32(bp32(bp, BP_RAMDISK_SIZE), bp32(bp, BP_EXT_RAMDISK_SIZE));

	uart_puts("initrd: addr=");
	uart_hex(addr);
	uart_puts(" size=");
	uart_hex(size);
	uart_puts(" fnv1a=");
	uart_hex(fnv1a((const u8 *)addr, size));
	uart_putc('\n');
}

int main(const u8 *boot_params)
{
	uart_puts("bootinfo: begin\n");
	print_cmdline(boot_params);
	print_e820(boot_params);
	print_initrd(boot_params);
	uart_puts("bootinfo: end\n");
	return 0;
}
