/* acpi: finds the RSDP the way an OS does (16-byte steps through
 * 0xE0000-0xFFFFF), walks the XSDT, prints each table's signature, counts
 * the MADT's local APICs, then powers off through the FADT's PM1a_CNT with
 * SLP_TYP=5 (the DSDT's \_S5) and SLP_EN.
 *
 * Output:
 *   acpi: rsdp at 0x...
 *   acpi: table FACP
 *   acpi: table APIC
 *   acpi: cpus N
 *   acpi: pm1a_cnt 0x604
 *   acpi: powering off
 */
#include "rt.h"

static int sig_is(const u8 *p, const char *s)
{
	for (int i = 0; s[i]; i++)
		if (p[i] != (u8)s[i])
			return 0;
	return 1;
}

static u32 rd32(const u8 *p) { return *(const u32 *)p; }
static u64 rd64(const u8 *p) { return *(const u64 *)p; }

static void put_sig(const u8 *p)
{
	for (int i = 0; i < 4; i++)
		uart_putc((char)p[i]);
}

int main(const u8 *boot_params)
{
	const u8 *rsdp = 0;
	(void)boot_params;
	for (u64 a = 0xE0000; a < 0x100000; a += 16) {
		if (sig_is((const u8 *)a, "RSD PTR ")) {
			rsdp = (const u8 *)a;
			break;
		}
	}
	if (!rsdp) {
		uart_puts("acpi: no rsdp\n");
		return 0;
	}
	uart_puts("acpi: rsdp at ");
	uart_hex((u64)rsdp);
	uart_puts("\n");

	const u8 *xsdt = (const u8 *)rd64(rsdp + 24);
	u32 n = (rd32(xsdt + 4) - 36) / 8;
	u16 pm1a_cnt = 0;
	for (u32 i = 0; i < n; i++) {
		const u8 *t = (const u8 *)rd64(xsdt + 36 + 8 * i);
		uart_puts("acpi: table ");
		put_sig(t);
		uart_puts("\n");
		if (sig_is(t, "FACP"))
			pm1a_cnt = (u16)rd32(t + 64); /* PM1a_CNT_BLK */
		if (sig_is(t, "APIC")) {
			u32 len = rd32(t + 4), cpus = 0;
			for (u32 off = 44; off + 2 <= len; off += t[off + 1]) {
				if (t[off + 1] == 0)
					break;
				if (t[off] == 0 && (rd32(t + off + 4) & 1)) /* enabled local APIC */
					cpus++;
			}
			uart_puts("acpi: cpus ");
			uart_dec(cpus);
			uart_puts("\n");
		}
	}
	uart_puts("acpi: pm1a_cnt ");
	uart_hex(pm1a_cnt);
	uart_puts("\nacpi: powering off\n");
	outw(pm1a_cnt, (5 << 10) | (1 << 13)); /* SLP_TYP=5, SLP_EN */
	uart_puts("acpi: still running after S5\n");
	return 0;
}
