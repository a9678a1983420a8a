/*
 * highmem: maps 4-5 GiB with 2 MiB pages through a page directory of its own
 * (PDPT[4]; the VMM maps only the first 4 GiB), then writes and reads back a
 * pattern at a few addresses above 4 GiB. Prints "highmem ok" or
 * "highmem FAIL addr=0x.. got=0x.. want=0x..". Run it with at least 5 GiB.
 */
#include "rt.h"

#define PTE_P 0x1ul
#define PTE_RW 0x2ul
#define PTE_PS 0x80ul
#define PTE_ADDR 0x000ffffffffff000ul

#define GIB (1ul << 30)
#define PAGE_2M (2ul << 20)

static u64 pd[512] __attribute__((aligned(4096)));

static u64 read_cr3(void)
{
	u64 v;
	__asm__ volatile("mov %%cr3, %0" : "=r"(v));
	return v;
}

static void write_cr3(u64 v)
{
	__asm__ volatile("mov %0, %%cr3" : : "r"(v) : "memory");
}

static void map_4g_to_5g(void)
{
	u64 cr3 = read_cr3();
	u64 *pml4 = (u64 *)(cr3 & PTE_ADDR);
	u64 *pdpt = (u64 *)(pml4[0] & PTE_ADDR);

	for (u64 i = 0; i < 512; i++)
		pd[i] = (4 * GIB + i * PAGE_2M) | PTE_P | PTE_RW | PTE_PS;
	pdpt[4] = (u64)pd | PTE_P | PTE_RW;
	write_cr3(cr3); /* flush the TLB */
}

static const u64 addrs[] = {
	4 * GIB,
	4 * GIB + 0x123458,
	4 * GIB + 512 * (1ul << 20) + 8,
	5 * GIB - 8,
};

static u64 pattern(u64 addr) { return addr ^ 0x5a5aa5a5c3c33c3cul; }

int main(const u8 *boot_params)
{
	(void)boot_params;
	map_4g_to_5g();
	for (unsigned i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++)
		*(volatile u64 *)addrs[i] = pattern(addrs[i]);
	for (unsigned i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		u64 got = *(volatile u64 *)addrs[i];

		if (got != pattern(addrs[i])) {
			uart_puts("highmem FAIL addr=");
			uart_hex(addrs[i]);
			uart_puts(" got=");
			uart_hex(got);
			uart_puts(" want=");
			uart_hex(pattern(addrs[i]));
			uart_putc('\n');
			return 1;
		}
	}
	uart_puts("highmem ok\n");
	return 0;
}
