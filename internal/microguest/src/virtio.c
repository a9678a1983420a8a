/* virtio: drives every virtio-pci function it finds with the polled driver
 * in vdrv.h (VERSION_1 only, queue 0, no interrupts), then resets.
 *
 * Block device: capacity from the device configuration, then GET_ID, a
 * read of sector 0 (printed as its FNV-1a-32), a write of sector 1 with
 * bytes i*7+3, a flush, and a read of the sector just past the end.
 * Entropy device: one 16-byte writable buffer. With "hold" on the kernel
 * command line the guest stops after the flush ("virtio-blk: holding")
 * and waits, halted, to be killed: a test of flushed data surviving the
 * VMM's death.
 *
 * Output, with a 128-sector disk and the entropy device:
 *   virtio: device 1 id=0x1042
 *   virtio-blk: features ok
 *   virtio-blk: capacity 128 sectors
 *   virtio-blk: id <GET_ID string>
 *   virtio-blk: sector0 fnv=0x...
 *   virtio-blk: write status 0        (1, IOERR, on a read-only disk)
 *   virtio-blk: flush status 0
 *   virtio-blk: past end status 1
 *   virtio: device 2 id=0x1044
 *   virtio-rng: features ok
 *   virtio-rng: got 16 bytes
 *   virtio: 2 device(s)
 */
#include "vdrv.h"

static int hold; /* "hold" on the command line */

/* has_hold reports whether the command line holds the word "hold". */
static int has_hold(const u8 *bp)
{
	const char *cl = (const char *)(u64)*(const u32 *)(bp + 0x228);
	for (const char *p = cl; p && *p; p++)
		if ((p == cl || p[-1] == ' ') && p[0] == 'h' && p[1] == 'o' && p[2] == 'l' && p[3] == 'd' &&
		    (p[4] == 0 || p[4] == ' '))
			return 1;
	return 0;
}

/* blk_request runs one request (blk_chain) and returns its status byte,
 * or -1 if the device never answers. */
static int blk_request(struct vdev *v, u32 type, u64 sector, u32 len, int in)
{
	blk_chain(&vqs[0], type, sector, len, in);
	if (submit(v, &vqs[0], "virtio-blk") < 0)
		return -1;
	return blk_status;
}

static void print_status(const char *what, int s)
{
	uart_puts("virtio-blk: ");
	uart_puts(what);
	uart_puts(" status ");
	if (s < 0)
		uart_puts("none");
	else
		uart_dec((u64)s);
	uart_puts("\n");
}

static void drive_blk(struct vdev *v)
{
	if (!bring_up(v, "virtio-blk", 0, 1))
		return;
	u64 capacity = blk_capacity(v);
	uart_puts("virtio-blk: capacity ");
	uart_dec(capacity);
	uart_puts(" sectors\n");

	memset(blk_data, 0, sizeof(blk_data));
	int s = blk_request(v, BLK_T_GET_ID, 0, BLK_ID_BYTES, 1);
	if (s != 0) {
		print_status("get_id", s);
	} else {
		uart_puts("virtio-blk: id ");
		for (int i = 0; i < BLK_ID_BYTES && blk_data[i]; i++)
			uart_putc((char)blk_data[i]);
		uart_puts("\n");
	}

	s = blk_request(v, BLK_T_IN, 0, SECTOR, 1);
	if (s != 0) {
		print_status("read", s);
	} else {
		uart_puts("virtio-blk: sector0 fnv=");
		uart_hex(fnv1a(blk_data, SECTOR));
		uart_puts("\n");
	}

	for (u32 i = 0; i < SECTOR; i++)
		blk_data[i] = (u8)(i * 7 + 3);
	print_status("write", blk_request(v, BLK_T_OUT, 1, SECTOR, 0));
	print_status("flush", blk_request(v, BLK_T_FLUSH, 0, 0, 0));
	if (hold) {
		uart_puts("virtio-blk: holding\n");
		for (;;)
			__asm__ volatile("cli; hlt");
	}
	print_status("past end", blk_request(v, BLK_T_IN, capacity, SECTOR, 1));
}

static void drive_rng(struct vdev *v)
{
	if (!bring_up(v, "virtio-rng", 0, 1))
		return;
	set_desc(&vqs[0], 0, blk_data, 16, VIRTQ_DESC_F_WRITE, 1);
	long got = submit(v, &vqs[0], "virtio-rng");
	if (got < 0)
		return;
	uart_puts("virtio-rng: got ");
	uart_dec((u64)got);
	uart_puts(" bytes\n");
}

int main(const u8 *boot_params)
{
	u32 found = 0;
	hold = has_hold(boot_params);
	for (u32 dev = 0; dev < 32; dev++) {
		u32 id = cfg_read32(dev, 0);
		u32 devid = id >> 16;
		if ((id & 0xffff) != VIRTIO_VENDOR || devid < VIRTIO_DEVID_BASE)
			continue;
		found++;
		uart_puts("virtio: device ");
		uart_dec(dev);
		uart_puts(" id=");
		uart_hex(devid);
		uart_puts("\n");

		struct vdev v;
		if (!vdev_open(&v, dev)) {
			uart_puts("virtio: missing capabilities\n");
			continue;
		}
		switch (devid - VIRTIO_DEVID_BASE) {
		case VIRTIO_ID_BLOCK:
			drive_blk(&v);
			break;
		case VIRTIO_ID_RNG:
			drive_rng(&v);
			break;
		}
		/* Leave the device reset, holding no address of ours. */
		wr8(v.common, CC_STATUS, 0);
	}
	uart_puts("virtio: ");
	uart_dec(found);
	uart_puts(" device(s)\n");
	return 0;
}
