/* virtio: a polled virtio 1.x driver over the modern PCI transport. It
 * scans bus 0 through 0xCF8/0xCFC, finds each virtio function's COMMON,
 * NOTIFY, ISR and DEVICE structures by walking the capability list
 * (cap_vndr 0x09), turns on memory decoding and bus mastering, and brings
 * the device up as §3.1.1 says: reset, ACKNOWLEDGE|DRIVER, VERSION_1 and
 * nothing else, FEATURES_OK read back, queue 0 of size 8 with no MSI-X
 * vector, DRIVER_OK. Each request is one descriptor chain made available,
 * notified with a 16-bit write of the queue index, and polled for in
 * used->idx; no interrupts are taken. Rings and buffers are static arrays
 * in the image (physical = virtual). It resets at the end.
 *
 * Block device: capacity from the device configuration, then GET_ID, a
 * read of sector 0 (printed as its FNV-1a-32), a write of sector 1 with
 * bytes i*7+3, and a flush. Entropy device: one 16-byte writable buffer.
 *
 * Output, with a disk and the entropy device:
 *   virtio: device 1 id=0x1042
 *   virtio-blk: features ok
 *   virtio-blk: capacity 128 sectors
 *   virtio-blk: id <GET_ID string>
 *   virtio-blk: sector0 fnv=0x...
 *   virtio-blk: write status 0        (1, IOERR, on a read-only disk)
 *   virtio-blk: flush status 0
 *   virtio: device 2 id=0x1044
 *   virtio-rng: features ok
 *   virtio-rng: got 16 bytes
 *   virtio: 2 device(s)
 */
#include "rt.h"

/* PCI configuration space. */
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_BAR0 0x10
#define PCI_CAP_PTR 0x34
#define PCI_CMD_MEM 0x2
#define PCI_CMD_MASTER 0x4
#define PCI_STATUS_CAP_LIST 0x10
#define PCI_CAP_VNDR 0x09

#define VIRTIO_VENDOR 0x1af4
#define VIRTIO_DEVID_BASE 0x1040
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_RNG 4

/* struct virtio_pci_cap cfg_type (§4.1.4). */
#define CAP_COMMON 1
#define CAP_NOTIFY 2
#define CAP_ISR 3
#define CAP_DEVICE 4

/* struct virtio_pci_common_cfg (§4.1.4.3). */
#define CC_DEV_FEAT_SEL 0x00
#define CC_DEV_FEAT 0x04
#define CC_DRV_FEAT_SEL 0x08
#define CC_DRV_FEAT 0x0c
#define CC_CONFIG_MSIX 0x10
#define CC_STATUS 0x14
#define CC_GENERATION 0x15
#define CC_Q_SELECT 0x16
#define CC_Q_SIZE 0x18
#define CC_Q_MSIX 0x1a
#define CC_Q_ENABLE 0x1c
#define CC_Q_NOTIFY_OFF 0x1e
#define CC_Q_DESC 0x20
#define CC_Q_DRIVER 0x28
#define CC_Q_DEVICE 0x30

/* Device status (§2.1). */
#define S_ACKNOWLEDGE 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8
#define S_FAILED 128

#define NO_VECTOR 0xffff
#define F_VERSION_1_HI 1 /* bit 32: bit 0 of feature word 1 */

/* Split virtqueue (§2.7). */
#define QSIZE 8
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2

/* virtio-blk (§5.2.6). */
#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_T_FLUSH 4
#define BLK_T_GET_ID 8
#define BLK_ID_BYTES 20
#define SECTOR 512

/* Polls of used->idx before a request counts as lost. */
#define POLL_LIMIT (1u << 22)

struct virtq_desc {
	u64 addr;
	u32 len;
	u16 flags;
	u16 next;
};

struct virtq_avail {
	u16 flags;
	u16 idx;
	u16 ring[QSIZE];
	u16 used_event;
};

struct virtq_used_elem {
	u32 id;
	u32 len;
};

struct virtq_used {
	u16 flags;
	u16 idx;
	struct virtq_used_elem ring[QSIZE];
	u16 avail_event;
};

/* One queue's rings, in the image. One device is driven at a time, and a
 * reset leaves the device holding no address of ours, so every device
 * reuses them. */
static struct virtq_desc desc[QSIZE] __attribute__((aligned(16)));
static struct virtq_avail avail __attribute__((aligned(2)));
static struct virtq_used used __attribute__((aligned(4)));

struct blk_req_hdr {
	u32 type;
	u32 reserved;
	u64 sector;
};

static struct blk_req_hdr hdr __attribute__((aligned(16)));
static u8 data[SECTOR] __attribute__((aligned(16)));
static volatile u8 status_byte;

/* A driven device: where its structures are in its BARs. */
struct vdev {
	u32 dev;
	volatile u8 *common;
	volatile u8 *notify;
	volatile u8 *isr;
	volatile u8 *device;
	u32 notify_mult;
	volatile u16 *qnotify; /* queue 0's notify register */
	u16 avail_idx;         /* next avail->idx */
	u16 used_idx;          /* used->idx already consumed */
};

static inline void barrier(void) { __asm__ volatile("" : : : "memory"); }

static void cfg_addr(u32 dev, u32 reg)
{
	outl(0xcf8, 0x80000000u | (dev << 11) | (reg & 0xfc));
}

static u32 cfg_read32(u32 dev, u32 reg)
{
	cfg_addr(dev, reg);
	return inl(0xcfc);
}

static u8 cfg_read8(u32 dev, u32 reg)
{
	cfg_addr(dev, reg);
	return inb((u16)(0xcfc + (reg & 3)));
}

static void cfg_write16(u32 dev, u32 reg, u16 v)
{
	cfg_addr(dev, reg);
	outw((u16)(0xcfc + (reg & 2)), v);
}

/* MMIO through volatile pointers: one mov each. */
static u8 rd8(volatile u8 *b, u32 off) { return *(volatile u8 *)(b + off); }
static u16 rd16(volatile u8 *b, u32 off) { return *(volatile u16 *)(b + off); }
static u32 rd32(volatile u8 *b, u32 off) { return *(volatile u32 *)(b + off); }
static void wr8(volatile u8 *b, u32 off, u8 v) { *(volatile u8 *)(b + off) = v; }
static void wr16(volatile u8 *b, u32 off, u16 v) { *(volatile u16 *)(b + off) = v; }
static void wr32(volatile u8 *b, u32 off, u32 v) { *(volatile u32 *)(b + off) = v; }

/* wr64 writes a queue address as two 32-bit halves, as Linux does. */
static void wr64(volatile u8 *b, u32 off, u64 v)
{
	wr32(b, off, (u32)v);
	wr32(b, off + 4, (u32)(v >> 32));
}

static void puts2(const char *a, const char *b)
{
	uart_puts(a);
	uart_puts(b);
}

/* find_caps walks the capability list and fills in the structures'
 * addresses from the first capability of each type; 0 if one is missing. */
static int find_caps(struct vdev *v)
{
	if (!((cfg_read32(v->dev, PCI_COMMAND) >> 16) & PCI_STATUS_CAP_LIST))
		return 0;
	u32 pos = cfg_read8(v->dev, PCI_CAP_PTR) & 0xfc;
	for (int n = 0; pos && n < 48; n++, pos = cfg_read8(v->dev, pos + 1) & 0xfc) {
		if (cfg_read8(v->dev, pos) != PCI_CAP_VNDR)
			continue;
		u8 type = cfg_read8(v->dev, pos + 3);
		u8 bar = cfg_read8(v->dev, pos + 4);
		if (bar > 5 || type < CAP_COMMON || type > CAP_DEVICE)
			continue;
		u32 base = cfg_read32(v->dev, PCI_BAR0 + 4 * bar) & ~0xfu;
		volatile u8 *p = (volatile u8 *)(u64)(base + cfg_read32(v->dev, pos + 8));
		switch (type) {
		case CAP_COMMON:
			if (!v->common)
				v->common = p;
			break;
		case CAP_NOTIFY:
			if (!v->notify) {
				v->notify = p;
				v->notify_mult = cfg_read32(v->dev, pos + 16);
			}
			break;
		case CAP_ISR:
			if (!v->isr)
				v->isr = p;
			break;
		case CAP_DEVICE:
			if (!v->device)
				v->device = p;
			break;
		}
	}
	return v->common && v->notify && v->isr && v->device;
}

static void add_status(struct vdev *v, u8 s)
{
	wr8(v->common, CC_STATUS, rd8(v->common, CC_STATUS) | s);
}

/* bring_up runs §3.1.1 with VERSION_1 as the only feature and sets up
 * queue 0 with QSIZE entries; it prints "<name>: features ok" and returns
 * 1 when the device is live. */
static int bring_up(struct vdev *v, const char *name)
{
	volatile u8 *c = v->common;

	wr8(c, CC_STATUS, 0);
	for (u32 n = 0; rd8(c, CC_STATUS) != 0; n++) { /* §4.1.4.3.2: reset is done when it reads 0 */
		if (n == POLL_LIMIT) {
			puts2(name, ": reset never completes\n");
			return 0;
		}
	}
	add_status(v, S_ACKNOWLEDGE);
	add_status(v, S_DRIVER);

	wr32(c, CC_DEV_FEAT_SEL, 0);
	u32 lo = rd32(c, CC_DEV_FEAT);
	wr32(c, CC_DEV_FEAT_SEL, 1);
	u32 hi = rd32(c, CC_DEV_FEAT);
	(void)lo;
	if (!(hi & F_VERSION_1_HI)) {
		puts2(name, ": no VERSION_1\n");
		add_status(v, S_FAILED);
		return 0;
	}
	wr32(c, CC_DRV_FEAT_SEL, 0);
	wr32(c, CC_DRV_FEAT, 0);
	wr32(c, CC_DRV_FEAT_SEL, 1);
	wr32(c, CC_DRV_FEAT, F_VERSION_1_HI);
	add_status(v, S_FEATURES_OK);
	if (!(rd8(c, CC_STATUS) & S_FEATURES_OK)) {
		puts2(name, ": features refused\n");
		add_status(v, S_FAILED);
		return 0;
	}
	puts2(name, ": features ok\n");

	wr16(c, CC_CONFIG_MSIX, NO_VECTOR);
	wr16(c, CC_Q_SELECT, 0);
	u16 max = rd16(c, CC_Q_SIZE);
	if (max < QSIZE) {
		puts2(name, ": queue 0 too small: ");
		uart_dec(max);
		uart_puts("\n");
		add_status(v, S_FAILED);
		return 0;
	}
	memset((void *)desc, 0, sizeof(desc));
	memset((void *)&avail, 0, sizeof(avail));
	memset((void *)&used, 0, sizeof(used));
	v->avail_idx = 0;
	v->used_idx = 0;
	wr16(c, CC_Q_SIZE, QSIZE);
	wr16(c, CC_Q_MSIX, NO_VECTOR);
	wr64(c, CC_Q_DESC, (u64)desc);
	wr64(c, CC_Q_DRIVER, (u64)&avail);
	wr64(c, CC_Q_DEVICE, (u64)&used);
	u16 off = rd16(c, CC_Q_NOTIFY_OFF);
	v->qnotify = (volatile u16 *)(v->notify + (u32)off * v->notify_mult);
	barrier();
	wr16(c, CC_Q_ENABLE, 1);
	if (rd16(c, CC_Q_ENABLE) != 1) {
		puts2(name, ": queue 0 not enabled\n");
		add_status(v, S_FAILED);
		return 0;
	}
	add_status(v, S_DRIVER_OK);
	u8 st = rd8(c, CC_STATUS);
	if (!(st & S_DRIVER_OK)) {
		puts2(name, ": DRIVER_OK refused, status ");
		uart_hex(st);
		uart_puts("\n");
		return 0;
	}
	return 1;
}

/* set_desc fills descriptor i; it chains to i+1 unless last. */
static void set_desc(int i, const volatile void *buf, u32 len, u16 flags, int last)
{
	desc[i].addr = (u64)buf;
	desc[i].len = len;
	desc[i].flags = flags | (last ? 0 : VIRTQ_DESC_F_NEXT);
	desc[i].next = last ? 0 : (u16)(i + 1);
}

/* submit makes the chain at descriptor 0 available, notifies queue 0 and
 * polls for it in the used ring. It returns the used length, or -1 if the
 * device never answers. */
static long submit(struct vdev *v, const char *name)
{
	avail.ring[v->avail_idx % QSIZE] = 0;
	barrier(); /* the ring entry before the index: x86 keeps stores in order */
	v->avail_idx++;
	*(volatile u16 *)&avail.idx = v->avail_idx;
	barrier();
	*v->qnotify = 0; /* queue index 0 */
	for (u32 n = 0; n < POLL_LIMIT; n++) {
		if (*(volatile u16 *)&used.idx != v->used_idx) {
			barrier();
			struct virtq_used_elem e = *(volatile struct virtq_used_elem *)&used.ring[v->used_idx % QSIZE];
			v->used_idx++;
			if (e.id != 0) {
				puts2(name, ": used id ");
				uart_dec(e.id);
				uart_puts(", want 0\n");
				return -1;
			}
			return e.len;
		}
	}
	puts2(name, ": no answer, status ");
	uart_hex(rd8(v->common, CC_STATUS));
	uart_puts("\n");
	return -1;
}

/* blk_request runs one request: header, optional data (len bytes, device
 * writable if in), status. It returns the status byte, or -1. */
static int blk_request(struct vdev *v, u32 type, u64 sector, u32 len, int in)
{
	hdr.type = type;
	hdr.reserved = 0;
	hdr.sector = sector;
	status_byte = 0xff;
	int i = 0;
	set_desc(i++, &hdr, sizeof(hdr), 0, 0);
	if (len)
		set_desc(i++, data, len, in ? VIRTQ_DESC_F_WRITE : 0, 0);
	set_desc(i, &status_byte, 1, VIRTQ_DESC_F_WRITE, 1);
	long got = submit(v, "virtio-blk");
	if (got < 0)
		return -1;
	return status_byte;
}

static u64 blk_capacity(struct vdev *v)
{
	u8 gen;
	u32 lo, hi;
	do {
		gen = rd8(v->common, CC_GENERATION);
		lo = rd32(v->device, 0);
		hi = rd32(v->device, 4);
	} while (rd8(v->common, CC_GENERATION) != gen);
	return (u64)hi << 32 | lo;
}

static u32 fnv1a(const u8 *p, u32 n)
{
	u32 h = 2166136261u;
	for (u32 i = 0; i < n; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
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
	if (!bring_up(v, "virtio-blk"))
		return;
	uart_puts("virtio-blk: capacity ");
	uart_dec(blk_capacity(v));
	uart_puts(" sectors\n");

	memset(data, 0, sizeof(data));
	int s = blk_request(v, BLK_T_GET_ID, 0, BLK_ID_BYTES, 1);
	if (s != 0) {
		print_status("get_id", s);
	} else {
		uart_puts("virtio-blk: id ");
		for (int i = 0; i < BLK_ID_BYTES && data[i]; i++)
			uart_putc((char)data[i]);
		uart_puts("\n");
	}

	s = blk_request(v, BLK_T_IN, 0, SECTOR, 1);
	if (s != 0) {
		print_status("read", s);
	} else {
		uart_puts("virtio-blk: sector0 fnv=");
		uart_hex(fnv1a(data, SECTOR));
		uart_puts("\n");
	}

	for (u32 i = 0; i < SECTOR; i++)
		data[i] = (u8)(i * 7 + 3);
	print_status("write", blk_request(v, BLK_T_OUT, 1, SECTOR, 0));
	print_status("flush", blk_request(v, BLK_T_FLUSH, 0, 0, 0));
}

static void drive_rng(struct vdev *v)
{
	if (!bring_up(v, "virtio-rng"))
		return;
	set_desc(0, data, 16, VIRTQ_DESC_F_WRITE, 1);
	long got = submit(v, "virtio-rng");
	if (got < 0)
		return;
	uart_puts("virtio-rng: got ");
	uart_dec((u64)got);
	uart_puts(" bytes\n");
}

int main(const u8 *boot_params)
{
	u32 found = 0;
	(void)boot_params;
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
		memset(&v, 0, sizeof(v));
		v.dev = dev;
		if (!find_caps(&v)) {
			uart_puts("virtio: missing capabilities\n");
			continue;
		}
		u16 cmd = (u16)cfg_read32(dev, PCI_COMMAND);
		cfg_write16(dev, PCI_COMMAND, cmd | PCI_CMD_MEM | PCI_CMD_MASTER);

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
