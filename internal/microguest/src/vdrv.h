/*
 * vdrv: a polled virtio 1.x driver over the modern PCI transport, shared by
 * the virtio micro-guests. It scans bus 0 through 0xCF8/0xCFC, finds a
 * function's COMMON, NOTIFY, ISR and DEVICE structures by walking the
 * capability list (cap_vndr 0x09), in 32- or 64-bit BARs below 4 GiB (what
 * the identity map covers), turns on memory decoding and bus mastering,
 * and brings the device up as §3.1.1 says: reset,
 * ACKNOWLEDGE|DRIVER, VERSION_1 plus the features asked for, FEATURES_OK
 * read back, up to VQ_MAX queues of QSIZE entries, DRIVER_OK. Requests are
 * descriptor chains made available, notified with a 16-bit write of the
 * queue index, and polled for in used->idx. Rings and buffers are static
 * arrays in the image (physical = virtual).
 */
#ifndef MICROGUEST_VDRV_H
#define MICROGUEST_VDRV_H

#include "rt.h"

/* Every function here is used by some guest, not by all. */
#define VDRV static __attribute__((unused))

/* PCI configuration space. */
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_BAR0 0x10
#define PCI_CAP_PTR 0x34
#define PCI_INT_LINE 0x3c
#define PCI_BAR_TYPE_MASK 0x7 /* memory/IO bit and the memory type */
#define PCI_BAR_MEM64 0x4
#define PCI_CMD_MEM 0x2
#define PCI_CMD_MASTER 0x4
#define PCI_STATUS_CAP_LIST 0x10
#define PCI_CAP_VNDR 0x09
#define PCI_CAP_MSIX 0x11

#define VIRTIO_VENDOR 0x1af4
#define VIRTIO_DEVID_BASE 0x1040
#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_RNG 4

/* virtio-net as the net guests drive it: the header with num_buffers,
 * Ethernet, and the EtherType they send (IEEE local experimental). */
#define NET_F_MAC (1u << 5)
#define NET_HDR 12
#define ETH_HLEN 14
#define ETH_TYPE_TEST 0x88b5
#define RXQ 0
#define TXQ 1

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
#define VQ_MAX 10
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2

/* Both entries map [0, 4 GiB) and no more (boot/pagetables.go, start.S). */
#define IDENTITY_LIMIT (4ul << 30)

/* Polls of used->idx before a request counts as lost. */
#define POLL_LIMIT (1u << 22)

/* The ACPI PM timer (vmm's FADT puts it at 0x608): 3.579545 MHz, 24 bits. */
#define PM_TMR_PORT 0x608
#define PM_TMR_HZ 3579545u

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

/* One queue's rings and the driver's indices into them. A reset leaves the
 * device holding no address of ours, so every device reuses them. */
struct vq {
	struct virtq_desc desc[QSIZE] __attribute__((aligned(16)));
	struct virtq_avail avail __attribute__((aligned(2)));
	struct virtq_used used __attribute__((aligned(4)));
	u16 avail_idx;         /* next avail->idx */
	u16 used_idx;          /* used->idx already consumed */
	volatile u16 *qnotify; /* the queue's notify register */
	u16 index;
};

static struct vq vqs[VQ_MAX] __attribute__((aligned(16)));

/* A driven device: where its structures are in its BARs. */
struct vdev {
	u32 dev;
	volatile u8 *common;
	volatile u8 *notify;
	volatile u8 *isr;
	volatile u8 *device;
	u32 notify_mult;
};

static inline void barrier(void) { __asm__ volatile("" : : : "memory"); }

VDRV void cfg_addr(u32 dev, u32 reg)
{
	outl(0xcf8, 0x80000000u | (dev << 11) | (reg & 0xfc));
}

VDRV u32 cfg_read32(u32 dev, u32 reg)
{
	cfg_addr(dev, reg);
	return inl(0xcfc);
}

VDRV u8 cfg_read8(u32 dev, u32 reg)
{
	cfg_addr(dev, reg);
	return inb((u16)(0xcfc + (reg & 3)));
}

VDRV u16 cfg_read16(u32 dev, u32 reg)
{
	return (u16)(cfg_read32(dev, reg & ~3u) >> (8 * (reg & 2)));
}

VDRV void cfg_write16(u32 dev, u32 reg, u16 v)
{
	cfg_addr(dev, reg);
	outw((u16)(0xcfc + (reg & 2)), v);
}

/* MMIO through volatile pointers: one mov each. */
static inline u8 rd8(volatile u8 *b, u32 off) { return *(volatile u8 *)(b + off); }
static inline u16 rd16(volatile u8 *b, u32 off) { return *(volatile u16 *)(b + off); }
static inline u32 rd32(volatile u8 *b, u32 off) { return *(volatile u32 *)(b + off); }
static inline void wr8(volatile u8 *b, u32 off, u8 v) { *(volatile u8 *)(b + off) = v; }
static inline void wr16(volatile u8 *b, u32 off, u16 v) { *(volatile u16 *)(b + off) = v; }
static inline void wr32(volatile u8 *b, u32 off, u32 v) { *(volatile u32 *)(b + off) = v; }

/* wr64 writes a queue address as two 32-bit halves, as Linux does. */
VDRV void wr64(volatile u8 *b, u32 off, u64 v)
{
	wr32(b, off, (u32)v);
	wr32(b, off + 4, (u32)(v >> 32));
}

VDRV void puts2(const char *a, const char *b)
{
	uart_puts(a);
	uart_puts(b);
}

/* pm_clock_start and pm_clock_ms measure waits in wall-clock
 * time, so a guest gives up after a bounded time whatever its speed. */
struct pm_clock {
	u32 last;
	u64 ticks;
};

VDRV void pm_clock_start(struct pm_clock *c)
{
	c->last = inl(PM_TMR_PORT) & 0xffffff;
	c->ticks = 0;
}

VDRV u64 pm_clock_ms(struct pm_clock *c)
{
	u32 now = inl(PM_TMR_PORT) & 0xffffff;
	c->ticks += (now - c->last) & 0xffffff;
	c->last = now;
	return c->ticks * 1000 / PM_TMR_HZ;
}

/* vdev_find returns the device number of the first virtio function of
 * type id at or after device from, or 32 if there is none. */
VDRV u32 vdev_find(u32 from, u32 id)
{
	for (u32 dev = from; dev < 32; dev++) {
		u32 r = cfg_read32(dev, 0);
		if ((r & 0xffff) == VIRTIO_VENDOR && (r >> 16) == VIRTIO_DEVID_BASE + id)
			return dev;
	}
	return 32;
}

/* bar_base is the memory address BAR bar decodes. A 64-bit BAR (QEMU's
 * virtio-pci BAR4 is one) takes its high half from the next register;
 * firmware may place it above 4 GiB. */
VDRV u64 bar_base(u32 dev, u32 bar)
{
	u32 lo = cfg_read32(dev, PCI_BAR0 + 4 * bar);
	u64 base = lo & ~0xfu;
	if ((lo & PCI_BAR_TYPE_MASK) == PCI_BAR_MEM64 && bar < 5)
		base |= (u64)cfg_read32(dev, PCI_BAR0 + 4 * (bar + 1)) << 32;
	return base;
}

/* vdev_open fills in the structures' addresses from the first capability
 * of each type and enables memory decoding and bus mastering; 0 if a
 * structure is missing. */
VDRV int vdev_open(struct vdev *v, u32 dev)
{
	memset(v, 0, sizeof(*v));
	v->dev = dev;
	if (!((cfg_read32(dev, PCI_COMMAND) >> 16) & PCI_STATUS_CAP_LIST))
		return 0;
	u32 pos = cfg_read8(dev, PCI_CAP_PTR) & 0xfc;
	for (int n = 0; pos && n < 48; n++, pos = cfg_read8(dev, pos + 1) & 0xfc) {
		if (cfg_read8(dev, pos) != PCI_CAP_VNDR)
			continue;
		u8 type = cfg_read8(dev, pos + 3);
		u8 bar = cfg_read8(dev, pos + 4);
		if (bar > 5 || type < CAP_COMMON || type > CAP_DEVICE)
			continue;
		u64 base = bar_base(dev, bar);
		if (base >= IDENTITY_LIMIT) {
			uart_puts("vdrv: BAR above 4 GiB, beyond the identity map\n");
			return 0;
		}
		volatile u8 *p = (volatile u8 *)(base + cfg_read32(dev, pos + 8));
		switch (type) {
		case CAP_COMMON:
			if (!v->common)
				v->common = p;
			break;
		case CAP_NOTIFY:
			if (!v->notify) {
				v->notify = p;
				v->notify_mult = cfg_read32(dev, pos + 16);
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
	if (!(v->common && v->notify && v->isr && v->device))
		return 0;
	u16 cmd = (u16)cfg_read32(dev, PCI_COMMAND);
	cfg_write16(dev, PCI_COMMAND, cmd | PCI_CMD_MEM | PCI_CMD_MASTER);
	return 1;
}

/* vdev_find_cap returns the config-space offset of capability id, or 0. */
VDRV u32 vdev_find_cap(u32 dev, u8 id)
{
	u32 pos = cfg_read8(dev, PCI_CAP_PTR) & 0xfc;
	for (int n = 0; pos && n < 48; n++, pos = cfg_read8(dev, pos + 1) & 0xfc)
		if (cfg_read8(dev, pos) == id)
			return pos;
	return 0;
}

VDRV void add_status(struct vdev *v, u8 s)
{
	wr8(v->common, CC_STATUS, rd8(v->common, CC_STATUS) | s);
}

/* vdev_reset writes 0 to the status and waits until it reads back 0
 * (§4.1.4.3.2); 0 if it never does. */
VDRV int vdev_reset(struct vdev *v, const char *name)
{
	wr8(v->common, CC_STATUS, 0);
	for (u32 n = 0; rd8(v->common, CC_STATUS) != 0; n++) {
		if (n == POLL_LIMIT) {
			puts2(name, ": reset never completes\n");
			return 0;
		}
	}
	return 1;
}

/* bring_up runs §3.1.1 with VERSION_1 and the feature bits feat (bits 0-31)
 * and sets up queues 0..nq-1 with QSIZE entries, queue 0 raising MSI-X
 * vector vector0 (NO_VECTOR for none; the others none); it prints
 * "<name>: features ok" and returns 1 when the device is live. */
VDRV int bring_up_vec(struct vdev *v, const char *name, u32 feat, int nq, u16 vector0)
{
	volatile u8 *c = v->common;

	if (!vdev_reset(v, name))
		return 0;
	add_status(v, S_ACKNOWLEDGE);
	add_status(v, S_DRIVER);

	wr32(c, CC_DEV_FEAT_SEL, 0);
	u32 lo = rd32(c, CC_DEV_FEAT);
	wr32(c, CC_DEV_FEAT_SEL, 1);
	u32 hi = rd32(c, CC_DEV_FEAT);
	if (!(hi & F_VERSION_1_HI) || (lo & feat) != feat) {
		puts2(name, ": features missing\n");
		add_status(v, S_FAILED);
		return 0;
	}
	wr32(c, CC_DRV_FEAT_SEL, 0);
	wr32(c, CC_DRV_FEAT, feat);
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
	for (int i = 0; i < nq && i < VQ_MAX; i++) {
		struct vq *q = &vqs[i];
		wr16(c, CC_Q_SELECT, (u16)i);
		u16 max = rd16(c, CC_Q_SIZE);
		if (max < QSIZE) {
			puts2(name, ": queue too small: ");
			uart_dec(max);
			uart_puts("\n");
			add_status(v, S_FAILED);
			return 0;
		}
		memset(q, 0, sizeof(*q));
		q->index = (u16)i;
		wr16(c, CC_Q_SIZE, QSIZE);
		u16 vec = i == 0 ? vector0 : NO_VECTOR;
		wr16(c, CC_Q_MSIX, vec);
		if (rd16(c, CC_Q_MSIX) != vec) {
			puts2(name, ": queue vector refused\n");
			add_status(v, S_FAILED);
			return 0;
		}
		wr64(c, CC_Q_DESC, (u64)q->desc);
		wr64(c, CC_Q_DRIVER, (u64)&q->avail);
		wr64(c, CC_Q_DEVICE, (u64)&q->used);
		u16 off = rd16(c, CC_Q_NOTIFY_OFF);
		q->qnotify = (volatile u16 *)(v->notify + (u32)off * v->notify_mult);
		barrier();
		wr16(c, CC_Q_ENABLE, 1);
		if (rd16(c, CC_Q_ENABLE) != 1) {
			puts2(name, ": queue not enabled\n");
			add_status(v, S_FAILED);
			return 0;
		}
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

VDRV int bring_up(struct vdev *v, const char *name, u32 feat, int nq)
{
	return bring_up_vec(v, name, feat, nq, NO_VECTOR);
}

/* set_desc fills descriptor i of q; it chains to i+1 unless last. */
VDRV void set_desc(struct vq *q, int i, const volatile void *buf, u32 len, u16 flags, int last)
{
	q->desc[i].addr = (u64)buf;
	q->desc[i].len = len;
	q->desc[i].flags = flags | (last ? 0 : VIRTQ_DESC_F_NEXT);
	q->desc[i].next = last ? 0 : (u16)(i + 1);
}

/* vq_publish makes the chain at descriptor head available, without a
 * notification (a batch is published, then notified once). */
VDRV void vq_publish(struct vq *q, u16 head)
{
	q->avail.ring[q->avail_idx % QSIZE] = head;
	barrier(); /* the ring entry before the index: x86 keeps stores in order */
	q->avail_idx++;
	*(volatile u16 *)&q->avail.idx = q->avail_idx;
}

VDRV void vq_notify(struct vq *q)
{
	barrier();
	*q->qnotify = q->index;
}

/* vq_kick makes the chain at descriptor head available and notifies. */
VDRV void vq_kick(struct vq *q, u16 head)
{
	vq_publish(q, head);
	vq_notify(q);
}

/* vq_used returns 1 and the next used element if the device returned one. */
VDRV int vq_used(struct vq *q, struct virtq_used_elem *e)
{
	if (*(volatile u16 *)&q->used.idx == q->used_idx)
		return 0;
	barrier();
	*e = *(volatile struct virtq_used_elem *)&q->used.ring[q->used_idx % QSIZE];
	q->used_idx++;
	return 1;
}

/* submit makes the chain at descriptor 0 of q available and polls for it in
 * the used ring. It returns the used length, or -1 if the device never
 * answers. */
VDRV long submit(struct vdev *v, struct vq *q, const char *name)
{
	struct virtq_used_elem e;
	vq_kick(q, 0);
	for (u32 n = 0; n < POLL_LIMIT; n++) {
		if (vq_used(q, &e)) {
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

/* virtio-blk requests (§5.2.6): a header, optional data, a status byte. */
#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_T_FLUSH 4
#define BLK_T_GET_ID 8
#define BLK_ID_BYTES 20
#define SECTOR 512

struct blk_req_hdr {
	u32 type;
	u32 reserved;
	u64 sector;
};

static struct blk_req_hdr blk_hdr __attribute__((aligned(16), unused));
static u8 blk_data[SECTOR] __attribute__((aligned(16), unused));
static volatile u8 blk_status __attribute__((unused));

/* blk_chain lays out one request at descriptor 0 of q: the header, len
 * bytes of blk_data (device-writable if in) unless len is 0, and the
 * status byte, which it sets to 0xff until the device answers. */
VDRV void blk_chain(struct vq *q, u32 type, u64 sector, u32 len, int in)
{
	blk_hdr.type = type;
	blk_hdr.reserved = 0;
	blk_hdr.sector = sector;
	blk_status = 0xff;
	int i = 0;
	set_desc(q, i++, &blk_hdr, sizeof(blk_hdr), 0, 0);
	if (len)
		set_desc(q, i++, blk_data, len, in ? VIRTQ_DESC_F_WRITE : 0, 0);
	set_desc(q, i, &blk_status, 1, VIRTQ_DESC_F_WRITE, 1);
}

/* blk_capacity reads the disk's size in sectors from the device
 * configuration, again if the generation changed meanwhile (§4.1.4.3). */
VDRV u64 blk_capacity(struct vdev *v)
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

#endif
