/* hostile: a guest that attacks the VMM, for the hardening tests. Each
 * phase prints one line when it is over; the VMM must survive all of them
 * and keep running the guest (or end it with a clear error), never panic,
 * hang or touch memory outside the guest.
 *
 *   ports       writes random values of every width to port-I/O space
 *               (0-0xfff every port, then every 16th), reading each back;
 *               it spares the ports that end the VM on purpose (i8042
 *               0x64, PM1a_CNT 0x604, 0xcf9) and the ones later phases use
 *   uart        floods COM1: 16 KiB of data, garbage in every register
 *               (divisor latch, loopback, FIFO control), then restores it
 *   virtio      for every virtio function: a descriptor chain that loops,
 *               a buffer far outside memory, an avail index that jumps by
 *               1000, a reset in the middle of a request, 20000 notifies
 *               in a row, and random values in every common-config field
 *               (queue addresses, sizes, DRIVER_OK) followed by notifies
 *   pci         random values in every config dword of every function
 *               (BARs moved anywhere, over RAM or each other), through
 *               0xcf8/0xcfc
 *   mmio        random writes across the 32-bit PCI hole
 *
 * Output: "hostile: <phase> done" per phase, then "hostile: survived".
 */
#include "vdrv.h"

static inline u16 inw(u16 port)
{
	u16 v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

#define PCI_HOLE_LO 0xc0000000ull
#define PCI_HOLE_HI 0xfec00000ull /* below the IOAPIC */

static u32 seed = 0x9e3779b9;
static u32 rnd(void)
{
	seed ^= seed << 13;
	seed ^= seed >> 17;
	seed ^= seed << 5;
	return seed;
}

static int spared(u32 port)
{
	return port == 0x64 || port == 0x604 || port == 0x605 || port == 0xcf9 || (port >= 0x3f8 && port < 0x400) ||
	       (port >= 0xcf8 && port < 0xd00) || (port >= 0x600 && port < 0x60c && port != 0x602);
}

static void phase_ports(void)
{
	for (u32 port = 0; port < 0x10000; port += port < 0x1000 ? 1 : 16) {
		if (spared(port))
			continue;
		outb((u16)port, (u8)rnd());
		(void)inb((u16)port);
		if (!(port & 1) && !spared(port + 1)) {
			outw((u16)port, (u16)rnd());
			(void)inw((u16)port);
		}
		if (!(port & 3) && !spared(port + 1) && !spared(port + 2) && !spared(port + 3)) {
			outl((u16)port, rnd());
			(void)inl((u16)port);
		}
	}
	uart_puts("\nhostile: ports done\n");
}

static void phase_uart(void)
{
	for (u32 i = 0; i < 16384; i++)
		outb(0x3f8, (u8)(' ' + i % 95));
	for (u32 i = 0; i < 256; i++)
		outb((u16)(0x3f9 + rnd() % 7), (u8)rnd());
	outb(0x3fb, 0x80); /* DLAB: the divisor */
	outb(0x3f8, 1);
	outb(0x3f9, 0);
	outb(0x3fb, 0x03); /* 8N1 */
	outb(0x3f9, 0);    /* no interrupts */
	outb(0x3fa, 0x07); /* FIFO on and cleared */
	outb(0x3fc, 0x03); /* DTR, RTS, no loopback */
	uart_puts("\nhostile: uart done\n");
}

/* Buffers the abused requests point at. */
static u8 hdr[16] __attribute__((aligned(16)));
static u8 data[512] __attribute__((aligned(16)));
static u8 status[1];

static void settle(void)
{
	struct pm_clock c;
	pm_clock_start(&c);
	while (pm_clock_ms(&c) < 20)
		;
}

static void attack(u32 dev, u32 id)
{
	struct vdev v;
	if (!vdev_open(&v, dev))
		return;
	int nq = id == VIRTIO_ID_NET ? 2 : 1;
	struct vq *q = &vqs[0];

	/* A chain whose only descriptor points at itself. */
	if (bring_up(&v, "hostile", 0, nq)) {
		q->desc[0].addr = (u64)data;
		q->desc[0].len = sizeof(data);
		q->desc[0].flags = VIRTQ_DESC_F_NEXT;
		q->desc[0].next = 0;
		vq_kick(q, 0);
		settle();
	}
	vdev_reset(&v, "hostile");
	/* A buffer far outside guest memory. */
	if (bring_up(&v, "hostile", 0, nq)) {
		set_desc(q, 0, (void *)0x7ffffffff000ull, 4096, 0, 0);
		set_desc(q, 1, (void *)0xfffffffffffff000ull, 4096, VIRTQ_DESC_F_WRITE, 1);
		vq_kick(q, 0);
		settle();
	}
	vdev_reset(&v, "hostile");
	/* An available index that jumps far ahead. */
	if (bring_up(&v, "hostile", 0, nq)) {
		set_desc(q, 0, data, sizeof(data), VIRTQ_DESC_F_WRITE, 1);
		q->avail_idx += 1000;
		vq_kick(q, 0);
		settle();
	}
	vdev_reset(&v, "hostile");
	/* A real request, then a reset before it can complete; then a storm
	 * of notifies. */
	if (bring_up(&v, "hostile", 0, nq)) {
		memset(hdr, 0, sizeof(hdr));
		set_desc(q, 0, hdr, 16, 0, 0);
		set_desc(q, 1, data, sizeof(data), VIRTQ_DESC_F_WRITE, 0);
		set_desc(q, 2, status, 1, VIRTQ_DESC_F_WRITE, 1);
		vq_kick(q, 0);
		wr8(v.common, CC_STATUS, 0);
	}
	vdev_reset(&v, "hostile");
	if (bring_up(&v, "hostile", 0, nq)) {
		for (u32 i = 0; i < 20000; i++)
			*q->qnotify = (u16)(i % (u32)nq);
	}
	vdev_reset(&v, "hostile");
	/* Random values in every common-config field, then notifies. */
	for (u32 round = 0; round < 64; round++) {
		u32 off = rnd() % 0x38;
		switch (rnd() % 3) {
		case 0:
			wr8(v.common, off, (u8)rnd());
			break;
		case 1:
			wr16(v.common, off & ~1u, (u16)rnd());
			break;
		default:
			wr32(v.common, off & ~3u, rnd());
		}
		*(volatile u16 *)(v.notify + (rnd() % 8) * v.notify_mult) = (u16)rnd();
	}
	wr8(v.common, CC_STATUS, 0);
}

static void phase_virtio(void)
{
	for (u32 dev = 0; dev < 32; dev++) {
		u32 r = cfg_read32(dev, 0);
		if ((r & 0xffff) == VIRTIO_VENDOR && (r >> 16) >= VIRTIO_DEVID_BASE)
			attack(dev, (r >> 16) - VIRTIO_DEVID_BASE);
	}
	uart_puts("hostile: virtio done\n");
}

static void phase_pci(void)
{
	for (u32 dev = 0; dev < 32; dev++)
		for (u32 reg = 0; reg < 256; reg += 4) {
			cfg_addr(dev, reg);
			outl(0xcfc, rnd());
			(void)inl(0xcfc);
		}
	/* Unaligned and odd-width accesses to the data ports. */
	for (u32 i = 0; i < 256; i++) {
		outl(0xcf8, rnd());
		outb((u16)(0xcfc + rnd() % 4), (u8)rnd());
		(void)inw(0xcfe);
	}
	outl(0xcf8, 0);
	uart_puts("hostile: pci done\n");
}

static void phase_mmio(void)
{
	for (u32 i = 0; i < 4096; i++) {
		u64 a = PCI_HOLE_LO + ((u64)rnd() % (PCI_HOLE_HI - PCI_HOLE_LO));
		*(volatile u32 *)(a & ~3ull) = rnd();
		(void)*(volatile u32 *)(a & ~3ull);
	}
	uart_puts("hostile: mmio done\n");
}

int main(const u8 *boot_params)
{
	(void)boot_params;
	phase_ports();
	phase_uart();
	phase_virtio();
	phase_pci();
	phase_mmio();
	uart_puts("hostile: survived\n");
	return 0;
}
