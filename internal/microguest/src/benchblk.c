/* benchblk: the virtio-blk data path, one request at a time. On the first
 * virtio-blk function of PCI bus 0 (polled, VERSION_1 only, queue 0) it
 * makes n (the kernel command line's "n=N", default 2000) sequential
 * requests of each kind, wrapping at the end of the disk, each phase
 * between begin and end lines (bench.h):
 *
 *   benchblk: n=2000 pm=1 capacity 131072 sectors
 *   benchblk: write-4k begin
 *   benchblk: write-4k end n=2000 bytes=8192000 us=... (.../s)
 *   benchblk: write-4k polls=19000
 *   benchblk: read-4k begin
 *   benchblk: read-4k end n=2000 bytes=8192000 us=... (.../s)
 *   benchblk: write-64k begin
 *   ...
 *   benchblk: read-64k end n=2000 bytes=131072000 us=... (.../s)
 *   benchblk: done
 *
 * A request is the 16-byte header, the data (device-writable for a read)
 * and the status byte, made available, notified and polled for; any
 * status but OK ends the run with "benchblk: <phase> request <i> status
 * <s>" ("none": no answer, or a used id other than 0). The guest never
 * touches the data. It negotiates VIRTIO_BLK_F_FLUSH (and never flushes),
 * so writes land in the host's page cache as a Linux guest's do. The disk
 * must hold at least 64 KiB.
 *
 * Where the host emulates guest code, building and submitting a request
 * is itself a good part of its time. The polls line counts the looks at
 * the used ring in the phase (a few instructions each): those beyond one
 * a request are the guest waiting for the VMM.
 */
#include "bench.h"
#include "vdrv.h"

#define GUEST "benchblk"
#define MAX_LEN (64u << 10)
#define TICK_EVERY 16
/* VIRTIO_BLK_F_FLUSH: without it the device must write through (§5.2.6.3),
 * and every write would wait for the host's disk rather than the VMM. */
#define BLK_F_FLUSH (1u << 9)

static u8 buf[MAX_LEN] __attribute__((aligned(4096)));

struct phase {
	const char *name;
	u32 type;
	u32 len;
};

static const struct phase phases[] = {
	{"write-4k", BLK_T_OUT, 4u << 10},
	{"read-4k", BLK_T_IN, 4u << 10},
	{"write-64k", BLK_T_OUT, 64u << 10},
	{"read-64k", BLK_T_IN, 64u << 10},
};

/* polls counts the phase's looks at the used ring: beyond one per
 * request, each is a wait for the VMM. */
static u64 polls;

/* request runs one request at sector and returns its status byte, or -1
 * if the device never answers. */
static int request(u32 type, u64 sector, u32 len)
{
	struct vq *q = &vqs[0];
	struct virtq_used_elem e;
	blk_hdr.type = type;
	blk_hdr.reserved = 0;
	blk_hdr.sector = sector;
	blk_status = 0xff;
	set_desc(q, 0, &blk_hdr, sizeof(blk_hdr), 0, 0);
	set_desc(q, 1, buf, len, type == BLK_T_IN ? VIRTQ_DESC_F_WRITE : 0, 0);
	set_desc(q, 2, &blk_status, 1, VIRTQ_DESC_F_WRITE, 1);
	vq_kick(q, 0);
	for (u32 n = 0; n < POLL_LIMIT; n++) {
		polls++;
		if (vq_used(q, &e))
			return e.id == 0 ? blk_status : -1;
	}
	return -1;
}

/* run does one phase; 0 if a request failed. */
static int run(const struct phase *p, u64 n, u64 sectors, struct bench_clock *c)
{
	u64 step = p->len / SECTOR;
	u64 span = sectors / step * step; /* whole requests fit below it */
	u64 sector = 0;
	polls = 0;
	bench_begin(c, GUEST, p->name);
	for (u64 i = 0; i < n; i++) {
		int s = request(p->type, sector, p->len);
		if (s != 0) {
			bench_line(GUEST, p->name, " request ");
			uart_dec(i);
			uart_puts(" status ");
			if (s < 0)
				uart_puts("none");
			else
				uart_dec((u64)s);
			uart_puts("\n");
			return 0;
		}
		sector += step;
		if (sector >= span)
			sector = 0;
		if (i % TICK_EVERY == TICK_EVERY - 1)
			bench_tick(c);
	}
	bench_end(c, GUEST, p->name, n, n * p->len);
	bench_line(GUEST, p->name, " polls=");
	uart_dec(polls);
	uart_puts("\n");
	return 1;
}

int main(const u8 *boot_params)
{
	u64 n = cmdline_num(boot_params, "n=", 2000);
	struct bench_clock c = {.have = bench_has_pm()};
	struct vdev v;

	u32 dev = vdev_find(0, VIRTIO_ID_BLOCK);
	if (dev == 32 || !vdev_open(&v, dev)) {
		uart_puts(GUEST ": no block device\n");
		return 1;
	}
	if (!bring_up(&v, GUEST, BLK_F_FLUSH, 1))
		return 1;
	u64 sectors = blk_capacity(&v);
	uart_puts(GUEST ": n=");
	uart_dec(n);
	uart_puts(c.have ? " pm=1" : " pm=0");
	uart_puts(" capacity ");
	uart_dec(sectors);
	uart_puts(" sectors\n");
	if (sectors < MAX_LEN / SECTOR) {
		uart_puts(GUEST ": disk smaller than 64 KiB\n");
		return 1;
	}
	for (u32 i = 0; i < sizeof(phases) / sizeof(phases[0]); i++)
		if (!run(&phases[i], n, sectors, &c))
			return 1;
	vdev_reset(&v, GUEST);
	uart_puts(GUEST ": done\n");
	bench_flush();
	return 0;
}
