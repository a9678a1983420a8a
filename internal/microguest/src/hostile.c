/* hostile: a guest that attacks the VMM, for the hardening tests. Each
 * phase prints one line when it is over; the VMM must survive all of them
 * and keep running the guest (or end it with a clear error), never panic,
 * hang or touch memory outside the guest.
 *
 * Kernel command line:
 *   seed=N         the PRNG seed, decimal or 0x hex (default 0x9e3779b9)
 *   cpus=N         CPUs that attack, 1 to 4 (default 1): boot with --cpus N
 *   end=poweroff   end through ACPI S5 rather than an i8042 reset
 *   idle=MS        how long the boot CPU sleeps before the end (default 1000)
 *
 * With cpus=N the application processors start in 64-bit mode (cpus.h)
 * and attack alongside the boot CPU; it waits for all of them at the end
 * of every phase, parks them (cli; hlt) before it sleeps, and ends the VM
 * only then. Phases:
 *
 *   ports       every CPU writes random values of every width to its share
 *               of port-I/O space (0-0xfff every port, then every 16th),
 *               reading each back; it spares the ports that end the VM on
 *               purpose (i8042 0x64, PM1a_CNT 0x604, 0xcf9) and the ones
 *               later phases use
 *   uart        every CPU floods COM1 and writes garbage in every register
 *               (divisor latch, loopback, FIFO control); then the boot CPU
 *               restores it
 *   virtio      the boot CPU, while CPU 1 hammers the PIC, PIT, CMOS and
 *               PM ports (the others halt): for every virtio function,
 *               descriptor chains
 *               that loop (one descriptor, the whole ring, inside an
 *               indirect table), heads and nexts out of range, buffers
 *               outside memory, across its end, wrapping 2^64 or on the
 *               LAPIC and the device's own registers, readable after
 *               writable, lengths that overflow 32 bits, indirect tables
 *               misaligned, oversize, of a bad length, nested, with NEXT,
 *               outside memory, with a next out of range, without the
 *               feature, and the largest legal one; an avail index that
 *               jumps; rings outside memory, over the LAPIC or over each
 *               other and queue sizes of 0, 3 and 0xffff; a full queue of
 *               requests reset in flight (the used ring must not move
 *               after the reset reads back 0); 5000 notifies and notifies
 *               of queues that do not exist; random common-config and
 *               device-config values and feature bits the device never
 *               offered; accesses through the PCI-config window
 *               (VIRTIO_PCI_CAP_PCI_CFG); MSI-X table and PBA garbage of
 *               every width while MSI-X is off, then messages that fire
 *               while vectors and the function are masked and unmasked
 *               and queue vectors past the table
 *   virtio-smp  the CPUs share out the devices (some get two CPUs) and run
 *               the chain attacks, resets and notify storms on them
 *   chaos       all CPUs on one device at a time: bring-ups, resets,
 *               requests, notify storms, common-config, device-config and
 *               MSI-X writes, memory decoding and MSI-X switched off and on
 *   pci         random values in every config dword of every function
 *               (BARs moved anywhere, over RAM or each other), through
 *               0xcf8/0xcfc, from all CPUs at once
 *   mmio        random writes across the 32-bit PCI hole, from all CPUs
 *
 * Messages sent through MSI-X always use fixed or lowest-priority delivery
 * to vectors 0x30-0xef, and queue addresses written at random point above
 * 2 GiB or into the writing CPU's scratch memory: the guest attacks the
 * VMM, not itself.
 *
 * Output:
 *   hostile: seed <S> cpus <N>
 *   hostile: <N> cpus attacking          (when N > 1)
 *   hostile: <phase> done                (per phase, in the order above)
 *   hostile: idle                        (all CPUs halted from here...)
 *   hostile: awake                       (...to here: idle=MS later)
 *   hostile: survived
 * and, when the VMM gets something wrong, "hostile: <device> wrote its used
 * ring after reset"; "hostile: cpu <K> did not start" or "... stuck" and
 * "hostile: exception" are the guest's own failures.
 */
#include "cpus.h"

static inline u16 inw(u16 port)
{
	u16 v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

#define PCI_HOLE_LO 0xc0000000ull
#define PCI_HOLE_HI 0xfec00000ull /* below the IOAPIC */

/* Each CPU's buffers, indirect tables and spare rings: 8 MiB from 16 MiB,
 * above the image and clear of vmm's boot data. */
#define SCRATCH_BASE (16ul << 20)
#define SCRATCH_SIZE (8ul << 20)
#define RAM_NEEDED (SCRATCH_BASE + CPUS_MAX * SCRATCH_SIZE)
#define S_BUF 0x0          /* small buffers: header, status, frames */
#define S_TABLES 0x10000   /* 4 KiB indirect tables, one per slot */
#define S_OVERFLOW 0x20000 /* the table whose lengths overflow */
#define S_DATA 0x100000    /* QSIZE 64 KiB data buffers */
#define S_MAX 0x200000     /* the largest legal indirect table, 512 KiB */
#define S_RINGS 0x400000   /* rings for odd queue sizes */
#define S_OVERFLOW_LEN (4u << 20)

#define F_INDIRECT (1u << 28)
#define VIRTQ_DESC_F_INDIRECT 4
#define MAX_INDIRECT 32768 /* virtio.MaxIndirectDescs */
#define CC_NUM_QUEUES 0x12
#define S_NEEDS_RESET 64
#define VIRTIO_ID_CONSOLE 3
#define CAP_PCI_CFG 5
#define NQ 4          /* queues driven per device */
#define SPIN 2000     /* status polls: a broken device may never read 0 */
#define DATA_LEN 65536

#define MSIX_CTL 2
#define MSIX_CTL_ENABLE 0x8000
#define MSIX_CTL_FMASK 0x4000
#define MSIX_CTL_SIZE 0x7ff
#define MSIX_TABLE 4
#define MSIX_PBA 8

enum phase {
	PH_PORTS = 1,
	PH_UART,
	PH_BACKGROUND,
	PH_VIRTIO_SMP,
	PH_CHAOS,
	PH_PCI,
	PH_MMIO,
	PH_PARK,
};

struct cpu {
	u32 id;
	u32 rng;
	u8 *scratch;
	int max_built; /* the S_MAX table is laid out */
	struct vq q[NQ];
};

/* A virtio function found at start, before any phase could move it. */
struct target {
	struct vdev v;
	u32 id; /* virtio device ID */
	u32 nq; /* queues driven: num_queues, at most NQ */
	u32 msix;
	u32 nvec;
	volatile u8 *table;
	volatile u8 *pba;
	u32 pcicfg; /* config offset of the PCI-config window capability */
};

static struct cpu cpus[CPUS_MAX];
static u32 ncpus = 1;
static struct target tgts[32];
static u32 ntgts;
static u64 ram_end;

/* Phases are handed to the APs by generation: go_what, then go_gen. */
static volatile u32 go_gen, go_what, chaos_target;
static volatile u32 ap_up[CPUS_MAX], ap_seen[CPUS_MAX], ap_done[CPUS_MAX];
static volatile u32 cfg_lock_word;

static u32 rnd(struct cpu *c)
{
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 17;
	c->rng ^= c->rng << 5;
	return c->rng;
}

/* 0xcf8/0xcfc is an address then a data access: CPUs that must not mix
 * up each other's take turns, as an OS does. The pci phase does not. */
static void cfg_lock(void)
{
	while (__atomic_exchange_n(&cfg_lock_word, 1, __ATOMIC_ACQUIRE))
		cpu_relax();
}

static void cfg_unlock(void) { __atomic_store_n(&cfg_lock_word, 0, __ATOMIC_RELEASE); }

static void cfg_write32(u32 dev, u32 reg, u32 v)
{
	cfg_addr(dev, reg);
	outl(0xcfc, v);
}

static void cfg_write8(u32 dev, u32 reg, u8 v)
{
	cfg_addr(dev, reg);
	outb((u16)(0xcfc + (reg & 3)), v);
}

static const char *dev_name(u32 id)
{
	switch (id) {
	case VIRTIO_ID_NET:
		return "virtio-net";
	case VIRTIO_ID_BLOCK:
		return "virtio-blk";
	case VIRTIO_ID_CONSOLE:
		return "virtio-console";
	case VIRTIO_ID_RNG:
		return "virtio-rng";
	}
	return "virtio";
}

/* ---- command line and memory ---- */

static u64 opt(const u8 *bp, const char *key, u64 def)
{
	const char *cl = (const char *)(u64)bp32(bp, BP_CMD_LINE_PTR);
	for (const char *p = cl; p && *p; p++) {
		if (p != cl && p[-1] != ' ')
			continue;
		const char *k = key, *q = p;
		while (*k && *q == *k)
			q++, k++;
		if (*k)
			continue;
		u64 n = 0;
		if (q[0] == '0' && q[1] == 'x') {
			for (q += 2;; q++) {
				u32 d = *q >= '0' && *q <= '9' ? (u32)(*q - '0') : *q >= 'a' && *q <= 'f' ? (u32)(*q - 'a' + 10) : 16;
				if (d == 16)
					break;
				n = n * 16 + d;
			}
		} else {
			while (*q >= '0' && *q <= '9')
				n = n * 10 + (u64)(*q++ - '0');
		}
		return n;
	}
	return def;
}

/* ram_end is the end of the usable RAM that holds the scratch areas. */
static u64 find_ram_end(const u8 *bp)
{
	const struct e820_entry *e = (const struct e820_entry *)(bp + BP_E820_TABLE);
	for (u32 i = 0; i < bp8(bp, BP_E820_ENTRIES); i++)
		if (e[i].type == 1 && e[i].addr <= SCRATCH_BASE && e[i].addr + e[i].size > SCRATCH_BASE)
			return e[i].addr + e[i].size;
	return 0;
}

/* ---- driving a device, quietly and with bounded waits ---- */

/* Guest instructions are slow on a software hypervisor (a byte loop over
 * 512 KiB takes seconds): clear with 8-byte stores, and only what needs it. */
static void zero(void *p, u64 n)
{
	for (u64 *w = p; n >= 8; n -= 8)
		*w++ = 0;
}

static int dev_reset(struct target *t)
{
	wr8(t->v.common, CC_STATUS, 0);
	for (u32 n = 0; n < SPIN; n++)
		if (rd8(t->v.common, CC_STATUS) == 0)
			return 1;
	return 0;
}

/* features picks a random subset of what the device offers, with
 * VERSION_1 and usually INDIRECT_DESC. */
static u32 features(struct cpu *c, struct target *t)
{
	wr32(t->v.common, CC_DEV_FEAT_SEL, 0);
	u32 offered = rd32(t->v.common, CC_DEV_FEAT);
	u32 want = rnd(c) | (rnd(c) % 8 ? F_INDIRECT : 0);
	return offered & want;
}

/* negotiate resets the device and takes it to FEATURES_OK. */
static int negotiate(struct target *t, u32 feat)
{
	volatile u8 *cc = t->v.common;
	dev_reset(t);
	wr8(cc, CC_STATUS, S_ACKNOWLEDGE | S_DRIVER);
	wr32(cc, CC_DRV_FEAT_SEL, 0);
	wr32(cc, CC_DRV_FEAT, feat);
	wr32(cc, CC_DRV_FEAT_SEL, 1);
	wr32(cc, CC_DRV_FEAT, F_VERSION_1_HI);
	wr8(cc, CC_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
	return (rd8(cc, CC_STATUS) & S_FEATURES_OK) != 0;
}

static void queue_at(struct target *t, u32 i, u16 size, u16 vec, u64 desc, u64 drv, u64 dev)
{
	volatile u8 *cc = t->v.common;
	wr16(cc, CC_Q_SELECT, (u16)i);
	wr16(cc, CC_Q_SIZE, size);
	wr16(cc, CC_Q_MSIX, vec);
	wr64(cc, CC_Q_DESC, desc);
	wr64(cc, CC_Q_DRIVER, drv);
	wr64(cc, CC_Q_DEVICE, dev);
	wr16(cc, CC_Q_ENABLE, 1);
}

static int driver_ok(struct target *t)
{
	wr8(t->v.common, CC_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	return (rd8(t->v.common, CC_STATUS) & S_DRIVER_OK) != 0;
}

/* up brings the device up on this CPU's rings, every queue on MSI-X
 * vector vec, and returns 1 if it is live. */
static int up(struct cpu *c, struct target *t, u32 feat, u16 vec)
{
	if (!negotiate(t, feat))
		return 0;
	wr16(t->v.common, CC_CONFIG_MSIX, vec);
	for (u32 i = 0; i < t->nq; i++) {
		struct vq *q = &c->q[i];
		zero(q, sizeof(*q));
		q->index = (u16)i;
		wr16(t->v.common, CC_Q_SELECT, (u16)i);
		q->qnotify = (volatile u16 *)(t->v.notify + (u32)rd16(t->v.common, CC_Q_NOTIFY_OFF) * t->v.notify_mult);
		queue_at(t, i, QSIZE, vec, (u64)q->desc, (u64)&q->avail, (u64)&q->used);
	}
	return driver_ok(t);
}

static int up_random(struct cpu *c, struct target *t)
{
	return up(c, t, features(c, t), NO_VECTOR);
}

/* attack_queue is a queue the device reads when notified: the request
 * queue, a transmit queue, the console's control queue. */
static u32 attack_queue(struct cpu *c, struct target *t)
{
	if (rnd(c) % 4 == 0 || t->id == VIRTIO_ID_BLOCK || t->id == VIRTIO_ID_RNG)
		return rnd(c) % 4 == 0 ? rnd(c) % t->nq : 0;
	u32 q = rnd(c) % 2 && t->nq > 3 ? 3 : 1;
	return q < t->nq ? q : 0;
}

/* settle gives the device up to 10 ms to act on what it was sent: until
 * it marks itself NEEDS_RESET or returns a buffer. */
static void settle(struct target *t, struct vq *q)
{
	struct pm_clock clk;
	u16 used = *(volatile u16 *)&q->used.idx;
	pm_clock_start(&clk);
	while (pm_clock_ms(&clk) < 10)
		if ((rd8(t->v.common, CC_STATUS) & S_NEEDS_RESET) || *(volatile u16 *)&q->used.idx != used)
			return;
}

static void desc(struct virtq_desc *d, u32 i, u64 addr, u32 len, u16 flags, u16 next)
{
	d[i].addr = addr;
	d[i].len = len;
	d[i].flags = flags;
	d[i].next = next;
}

/* request lays a well-formed request for queue qi of t in indirect table
 * slot, with data at data (DATA_LEN bytes of scratch), and points
 * descriptor head at it. */
static void request(struct cpu *c, struct target *t, struct vq *q, u32 qi, u16 head, u32 slot, u8 *data)
{
	struct virtq_desc *ind = (struct virtq_desc *)(c->scratch + S_TABLES + slot * 4096);
	u8 *hdr = c->scratch + S_BUF + slot * 32;
	u32 n = 0;
	switch (t->id) {
	case VIRTIO_ID_BLOCK:
		zero(hdr, 16); /* VIRTIO_BLK_T_IN */
		hdr[8] = (u8)(rnd(c) % 256); /* a sector, past the end or not */
		desc(ind, 0, (u64)hdr, 16, VIRTQ_DESC_F_NEXT, 1);
		desc(ind, 1, (u64)data, DATA_LEN, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
		desc(ind, 2, (u64)hdr + 16, 1, VIRTQ_DESC_F_WRITE, 0);
		n = 3;
		break;
	case VIRTIO_ID_RNG:
		desc(ind, n++, (u64)data, DATA_LEN, VIRTQ_DESC_F_WRITE, 0);
		break;
	default: /* odd queues are the device's to read: transmit, control out */
		if (qi & 1) {
			for (u32 i = 0; i < 64; i += 8) /* a broadcast frame after the header */
				*(u64 *)(data + i) = ~0ull;
			desc(ind, n++, (u64)data, 64, 0, 0);
		} else {
			desc(ind, n++, (u64)data, DATA_LEN, VIRTQ_DESC_F_WRITE, 0);
		}
	}
	desc(q->desc, head, (u64)ind, n * 16, VIRTQ_DESC_F_INDIRECT, 0);
}

/* ---- broken chains ---- */

enum chain_attack {
	A_LOOP_SELF,
	A_LOOP_RING,
	A_HEAD_RANGE,
	A_NEXT_RANGE,
	A_BUF_OUTSIDE,
	A_BUF_EDGE,
	A_BUF_MMIO,
	A_BUF_WRAP,
	A_WRITE_THEN_READ,
	A_ZERO_LEN,
	A_LEN_OVERFLOW,
	A_IND_LOOP,
	A_IND_MISALIGNED,
	A_IND_OVERSIZE,
	A_IND_BADLEN,
	A_IND_NESTED,
	A_IND_NEXT,
	A_IND_OUTSIDE,
	A_IND_EDGE,
	A_IND_NEXT_RANGE,
	A_IND_MAX,
	A_AVAIL_JUMP,
	N_CHAIN_ATTACKS,
};

/* lay_attack writes broken chain k into q and makes it available. */
static void lay_attack(struct cpu *c, struct target *t, struct vq *q, u32 k)
{
	struct virtq_desc *d = q->desc;
	u8 *s = c->scratch;
	struct virtq_desc *ind = (struct virtq_desc *)(s + S_TABLES);
	struct virtq_desc *over = (struct virtq_desc *)(s + S_OVERFLOW);
	struct virtq_desc *max = (struct virtq_desc *)(s + S_MAX);
	const u16 N = VIRTQ_DESC_F_NEXT, W = VIRTQ_DESC_F_WRITE, I = VIRTQ_DESC_F_INDIRECT;
	u16 head = 0;

	switch (k) {
	case A_LOOP_SELF:
		desc(d, 0, (u64)s, 512, N, 0);
		break;
	case A_LOOP_RING:
		for (u32 i = 0; i < QSIZE; i++)
			desc(d, i, (u64)s, 64, N, (u16)((i + 1) % QSIZE));
		break;
	case A_HEAD_RANGE:
		head = (u16)(QSIZE + rnd(c) % 0xfff0);
		desc(d, 0, (u64)s, 512, W, 0);
		break;
	case A_NEXT_RANGE:
		desc(d, 0, (u64)s, 16, N, (u16)(QSIZE + rnd(c) % 100));
		break;
	case A_BUF_OUTSIDE:
		desc(d, 0, 0x7ffffffff000ull, 4096, N, 1);
		desc(d, 1, 0xfffffffffffff000ull, 4096, W, 0);
		break;
	case A_BUF_EDGE: /* starts in RAM, ends past it */
		desc(d, 0, ram_end - 8, 4096, W, 0);
		break;
	case A_BUF_MMIO: /* DMA onto the LAPIC and the device's own registers */
		desc(d, 0, LAPIC, 4096, W | N, 1);
		desc(d, 1, (u64)t->v.common, 4096, W, 0);
		break;
	case A_BUF_WRAP:
		desc(d, 0, ~0ull - 15, 256, W, 0);
		break;
	case A_WRITE_THEN_READ:
		desc(d, 0, (u64)s, 16, W | N, 1);
		desc(d, 1, (u64)s + 16, 16, 0, 0);
		break;
	case A_ZERO_LEN:
		desc(d, 0, (u64)s, 0, W | N, 1);
		desc(d, 1, 0, 0, W, 0);
		break;
	case A_LEN_OVERFLOW: /* 1025 x 4 MiB, all in RAM: more than 2^32 */
		for (u32 i = 0; i < 1025; i++)
			desc(over, i, (u64)s, S_OVERFLOW_LEN, i < 1024 ? N : 0, (u16)(i + 1));
		desc(d, 0, (u64)over, 1025 * 16, I, 0);
		break;
	case A_IND_LOOP:
		desc(ind, 0, (u64)s, 16, N, 1);
		desc(ind, 1, (u64)s, 16, N, 0);
		desc(d, 0, (u64)ind, 32, I, 0);
		break;
	case A_IND_MISALIGNED: { /* legal, oddly placed: the device must cope */
		struct virtq_desc tmp[2];
		desc(tmp, 0, (u64)s, 16, N, 1);
		desc(tmp, 1, (u64)s + 512, 512, W, 0);
		u8 *odd = (u8 *)ind + 1 + rnd(c) % 15;
		memcpy(odd, tmp, sizeof(tmp));
		desc(d, 0, (u64)odd, sizeof(tmp), I, 0);
		break;
	}
	case A_IND_OVERSIZE: /* what the table holds does not matter */
		desc(d, 0, (u64)max, (MAX_INDIRECT + 1) * 16, I, 0);
		break;
	case A_IND_BADLEN: {
		static const u32 lens[] = {0, 8, 24, 0xfffffff0};
		desc(ind, 0, (u64)s, 16, 0, 0);
		desc(d, 0, (u64)ind, lens[rnd(c) % 4], I, 0);
		break;
	}
	case A_IND_NESTED:
		desc(ind + 8, 0, (u64)s, 16, W, 0);
		desc(ind, 0, (u64)(ind + 8), 16, I, 0);
		desc(d, 0, (u64)ind, 16, I, 0);
		break;
	case A_IND_NEXT:
		desc(ind, 0, (u64)s, 16, 0, 0);
		desc(d, 0, (u64)ind, 16, I | N, 1);
		desc(d, 1, (u64)s + 16, 1, W, 0);
		break;
	case A_IND_OUTSIDE:
		desc(d, 0, 0x7ffffff00000ull, 64, I, 0);
		break;
	case A_IND_EDGE:
		desc(d, 0, ram_end - 32, 64, I, 0);
		break;
	case A_IND_NEXT_RANGE:
		desc(ind, 0, (u64)s, 16, N, 7);
		desc(ind, 1, (u64)s, 16, 0, 0);
		desc(d, 0, (u64)ind, 32, I, 0);
		break;
	case A_IND_MAX: /* the largest legal table: a header, then 1-byte buffers */
		if (!c->max_built) {
			desc(max, 0, (u64)s, 16, N, 1);
			for (u32 i = 1; i < MAX_INDIRECT; i++)
				desc(max, i, (u64)s + 4096 + i % 4096, 1, W | (i + 1 < MAX_INDIRECT ? N : 0), (u16)(i + 1));
			c->max_built = 1;
		}
		zero(s, 16);
		desc(d, 0, (u64)max, MAX_INDIRECT * 16, I, 0);
		break;
	case A_AVAIL_JUMP:
		desc(d, 0, (u64)s, 512, W, 0);
		q->avail_idx += 1000;
		break;
	}
	vq_kick(q, head);
}

/* bad_rings sets up one queue with a size or rings the device must
 * refuse or survive, then tries to run it. */
static void bad_rings(struct cpu *c, struct target *t)
{
	static const u16 sizes[] = {0, 3, 0xffff, 0x8000, QSIZE};
	u8 *r = c->scratch + S_RINGS;
	u64 desc_at = (u64)r, drv = (u64)r + 0x80000, dev = (u64)r + 0x100000;
	switch (rnd(c) % 4) {
	case 0:
		desc_at = ram_end - 64; /* the table runs past the end of RAM */
		break;
	case 1:
		drv = LAPIC;
		dev = 0xfffffffffffff000ull;
		break;
	case 2:
		dev = desc_at; /* used entries land on the descriptors */
		drv = desc_at;
		break;
	}
	if (!negotiate(t, F_INDIRECT))
		return;
	u32 qi = attack_queue(c, t);
	wr16(t->v.common, CC_Q_SELECT, (u16)qi);
	u16 off = rd16(t->v.common, CC_Q_NOTIFY_OFF);
	zero(r, 64);
	queue_at(t, qi, sizes[rnd(c) % 5], NO_VECTOR, desc_at, drv, dev);
	driver_ok(t);
	*(volatile u16 *)(r + 0x80000 + 2) = 1; /* an avail index, where it is RAM */
	*(volatile u16 *)(t->v.notify + (u32)off * t->v.notify_mult) = (u16)qi;
	settle(t, &c->q[0]);
}

/* reset_in_flight fills a queue with requests, resets the device at once
 * and, if check, watches the used ring: once the reset reads back 0 the
 * device must not return anything there (§2.4). */
static void reset_in_flight(struct cpu *c, struct target *t, int check)
{
	if (!up(c, t, F_INDIRECT, NO_VECTOR))
		return;
	u32 qi = t->id == VIRTIO_ID_NET || t->id == VIRTIO_ID_CONSOLE ? rnd(c) % 2 : 0;
	struct vq *q = &c->q[qi];
	for (u32 i = 0; i < QSIZE; i++) {
		request(c, t, q, qi, (u16)i, i, c->scratch + S_DATA + i * DATA_LEN);
		q->avail.ring[i] = (u16)i;
	}
	barrier();
	q->avail_idx = QSIZE;
	*(volatile u16 *)&q->avail.idx = QSIZE;
	barrier();
	*q->qnotify = (u16)qi;
	if (rnd(c) % 2)
		wait_ms(rnd(c) % 2);
	if (!dev_reset(t) || !check)
		return;
	u16 was = *(volatile u16 *)&q->used.idx;
	wait_ms(20);
	if (*(volatile u16 *)&q->used.idx != was) {
		uart_puts("hostile: ");
		uart_puts(dev_name(t->id));
		uart_puts(" wrote its used ring after reset\n");
	}
}

/* common_garbage writes one random value to the common configuration.
 * Queue addresses get values above 2 GiB or inside this CPU's scratch,
 * so whatever the device writes there hurts no code. */
static void common_garbage(struct cpu *c, struct target *t)
{
	volatile u8 *cc = t->v.common;
	u32 off = rnd(c) % 0x38;
	if (off >= CC_Q_DESC) {
		u32 lo = rnd(c) % 2 ? rnd(c) | 0x80000000u : (u32)((u64)c->scratch + rnd(c) % SCRATCH_SIZE);
		wr32(cc, off & ~3u, off & 4 ? rnd(c) : lo);
		return;
	}
	switch (rnd(c) % 3) {
	case 0:
		wr8(cc, off, (u8)rnd(c));
		break;
	case 1:
		wr16(cc, off & ~1u, (u16)rnd(c));
		break;
	default:
		wr32(cc, off & ~3u, rnd(c));
	}
}

/* notify_garbage writes the notify area at offsets and with values no
 * queue has, and the real ones. */
static void notify_garbage(struct cpu *c, struct target *t, u32 n)
{
	for (u32 i = 0; i < n; i++) {
		u32 off = rnd(c) % ((NQ + 4) * t->v.notify_mult);
		if (rnd(c) % 2)
			*(volatile u16 *)(t->v.notify + (off & ~1u)) = (u16)rnd(c);
		else
			*(volatile u8 *)(t->v.notify + off) = (u8)rnd(c);
	}
}

static void device_garbage(struct cpu *c, struct target *t, u32 n)
{
	for (u32 i = 0; i < n; i++) {
		u32 off = rnd(c) % 0x100;
		switch (rnd(c) % 4) {
		case 0:
			wr8(t->v.device, off, (u8)rnd(c));
			break;
		case 1:
			wr16(t->v.device, off & ~1u, (u16)rnd(c));
			break;
		case 2:
			wr32(t->v.device, off & ~3u, rnd(c));
			break;
		default:
			(void)rd32(t->v.device, off & ~3u);
			(void)rd8(t->v.isr, 0);
		}
	}
}

/* feature_garbage negotiates what the device never offered and sets
 * status bits out of order. */
static void feature_garbage(struct cpu *c, struct target *t)
{
	volatile u8 *cc = t->v.common;
	dev_reset(t);
	wr8(cc, CC_STATUS, S_ACKNOWLEDGE | S_DRIVER);
	for (u32 sel = 0; sel < 4; sel++) {
		wr32(cc, CC_DRV_FEAT_SEL, sel);
		wr32(cc, CC_DRV_FEAT, rnd(c) | (sel == 1 ? F_VERSION_1_HI : 0));
	}
	wr8(cc, CC_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
	wr8(cc, CC_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	dev_reset(t);
	wr8(cc, CC_STATUS, S_DRIVER_OK | S_NEEDS_RESET); /* DRIVER_OK first */
	wr8(cc, CC_STATUS, (u8)rnd(c));
	dev_reset(t);
}

/* ---- MSI-X ---- */

/* msix_sane gives vector v a message that cannot hurt the guest: fixed
 * or lowest-priority delivery (never INIT, SMI or NMI) of a vector from
 * 0x30 to 0xef to a random APIC ID. */
static void msix_sane(struct cpu *c, struct target *t, u32 v, int masked)
{
	volatile u8 *e = t->table + v * 16;
	wr32(e, 12, 1); /* masked while it changes */
	wr32(e, 0, 0xfee00000u | (rnd(c) & 0xff) << 12 | (rnd(c) & 0xc));
	wr32(e, 4, rnd(c) % 4 ? 0 : rnd(c));
	wr32(e, 8, (0x30 + rnd(c) % 0xc0) | (rnd(c) & 1) << 8);
	wr32(e, 12, masked ? 1 : 0);
}

static void msix_control(struct target *t, u16 set)
{
	u16 ctl = cfg_read16(t->v.dev, t->msix + MSIX_CTL);
	cfg_write16(t->v.dev, t->msix + MSIX_CTL, (ctl & ~(MSIX_CTL_ENABLE | MSIX_CTL_FMASK)) | set);
}

static void mmio_write(volatile u8 *p, u32 width, u32 v)
{
	switch (width) {
	case 1:
		*(volatile u8 *)p = (u8)v;
		break;
	case 2:
		*(volatile u16 *)p = (u16)v;
		break;
	case 4:
		*(volatile u32 *)p = v;
		break;
	default:
		*(volatile u64 *)p = (u64)v << 32 | v;
	}
}

static void msix_garbage(struct cpu *c, struct target *t)
{
	msix_control(t, MSIX_CTL_FMASK); /* off: nothing garbage can fire */
	for (u32 i = 0; i < 256; i++) {
		u32 w = 1u << (rnd(c) % 4);
		u32 off = (rnd(c) % (t->nvec * 16 + 64)) & ~(w - 1);
		mmio_write(t->table + off, w, rnd(c));
		(void)*(volatile u32 *)(t->table + (off & ~3u));
		w = 1u << (rnd(c) % 4);
		off = (rnd(c) % 72) & ~(w - 1);
		mmio_write(t->pba + off, w, rnd(c));
		(void)*(volatile u64 *)(t->pba + (off & ~7u));
	}
	for (u32 v = 0; v < t->nvec; v++)
		msix_sane(c, t, v, rnd(c) % 2);
}

/* msix_tidy leaves the function with MSI-X off and every vector masked. */
static void msix_tidy(struct cpu *c, struct target *t)
{
	if (!t->msix)
		return;
	msix_control(t, MSIX_CTL_FMASK);
	for (u32 v = 0; v < t->nvec; v++)
		msix_sane(c, t, v, 1);
	msix_control(t, 0);
}

static void attack_msix(struct cpu *c, struct target *t)
{
	if (!t->msix)
		return;
	msix_garbage(c, t);
	msix_control(t, MSIX_CTL_ENABLE | (rnd(c) % 2 ? MSIX_CTL_FMASK : 0));
	for (u32 round = 0; round < 8; round++) {
		u16 vec = (u16)(rnd(c) % (t->nvec + 2)); /* some past the table */
		if (up(c, t, features(c, t), vec)) {
			u32 qi = attack_queue(c, t);
			request(c, t, &c->q[qi], qi, 0, 0, c->scratch + S_DATA);
			vq_kick(&c->q[qi], 0);
			settle(t, &c->q[qi]);
		}
		switch (rnd(c) % 4) {
		case 0:
			msix_sane(c, t, rnd(c) % t->nvec, rnd(c) % 2);
			break;
		case 1:
			msix_control(t, MSIX_CTL_ENABLE | (rnd(c) % 2 ? MSIX_CTL_FMASK : 0));
			break;
		case 2:
			(void)*(volatile u64 *)t->pba;
			mmio_write(t->pba, 8, rnd(c));
			break;
		default:
			for (u32 v = 0; v < t->nvec; v++) /* unmask: pending ones go */
				wr32(t->table + v * 16, 12, 0);
		}
	}
	dev_reset(t);
	msix_tidy(c, t);
}

/* pcicfg_window reaches BAR0 through VIRTIO_PCI_CAP_PCI_CFG (§4.1.4.9)
 * with odd BARs, offsets and lengths. In the common configuration it
 * stays below the queue addresses, and it never reaches the MSI-X table:
 * no unchecked address or message. */
static void pcicfg_window(struct cpu *c, struct target *t)
{
	static const u32 common[] = {CC_STATUS, CC_Q_SELECT, CC_Q_ENABLE};
	static const u32 pages[] = {0x1000, 0x2000, 0x3000, 0xfffffffc};
	static const u32 lens[] = {1, 2, 4, 3, 0, 8, 0xffffffff};
	if (!t->pcicfg)
		return;
	u32 p = t->pcicfg, dev = t->v.dev, off, len;
	if (rnd(c) % 2) {
		off = common[rnd(c) % 3];
		len = 1u << (rnd(c) % 3);
	} else {
		off = pages[rnd(c) % 4] + rnd(c) % 8;
		len = lens[rnd(c) % 7];
	}
	cfg_write8(dev, p + 4, rnd(c) % 8 ? 0 : (u8)rnd(c));
	cfg_write32(dev, p + 8, off);
	cfg_write32(dev, p + 12, len);
	if (rnd(c) % 2)
		cfg_write32(dev, p + 16, rnd(c));
	else
		(void)cfg_read32(dev, p + 16);
}

/* ---- per-device attacks ---- */

static void chain_attacks(struct cpu *c, struct target *t)
{
	for (u32 k = 0; k < N_CHAIN_ATTACKS; k++) {
		if (!up_random(c, t))
			continue;
		struct vq *q = &c->q[attack_queue(c, t)];
		lay_attack(c, t, q, k);
		settle(t, q);
	}
}

/* attack is the boot CPU's full, one-device-at-a-time round. */
static void attack(struct cpu *c, struct target *t)
{
	chain_attacks(c, t);
	/* Indirect descriptors the driver did not negotiate. */
	if (up(c, t, 0, NO_VECTOR)) {
		struct vq *q = &c->q[attack_queue(c, t)];
		lay_attack(c, t, q, A_IND_LOOP);
		settle(t, q);
	}
	for (u32 i = 0; i < 4; i++)
		bad_rings(c, t);
	for (u32 i = 0; i < 3; i++)
		reset_in_flight(c, t, 1);
	/* A request and a reset before it can complete; then notify storms. */
	if (up_random(c, t)) {
		request(c, t, &c->q[0], 0, 0, 0, c->scratch + S_DATA);
		vq_kick(&c->q[0], 0);
		wr8(t->v.common, CC_STATUS, 0);
	}
	if (up_random(c, t)) {
		for (u32 i = 0; i < 5000; i++)
			*c->q[i % t->nq].qnotify = (u16)(i % t->nq);
		notify_garbage(c, t, 512);
	}
	feature_garbage(c, t);
	device_garbage(c, t, 128);
	attack_msix(c, t);
	for (u32 i = 0; i < 64; i++)
		pcicfg_window(c, t);
	/* Random values in every common-config field, then notifies. */
	up_random(c, t);
	for (u32 round = 0; round < 64; round++) {
		common_garbage(c, t);
		notify_garbage(c, t, 1);
	}
	dev_reset(t);
}

/* attack_quick is the virtio-smp round: what several CPUs can do to
 * several devices at once without config space. */
static void attack_quick(struct cpu *c, struct target *t)
{
	chain_attacks(c, t);
	bad_rings(c, t);
	reset_in_flight(c, t, 0);
	if (up_random(c, t)) {
		for (u32 i = 0; i < 2000; i++)
			*c->q[i % t->nq].qnotify = (u16)(i % t->nq);
	}
	for (u32 round = 0; round < 32; round++) {
		common_garbage(c, t);
		notify_garbage(c, t, 1);
	}
	device_garbage(c, t, 32);
	dev_reset(t);
}

/* chaos is one CPU's share of everyone attacking one device at once. */
static void chaos(struct cpu *c, struct target *t)
{
	for (u32 i = 0; i < 240 / ncpus; i++) {
		switch (rnd(c) % 10) {
		case 0:
			if (up_random(c, t)) {
				struct vq *q = &c->q[attack_queue(c, t)];
				lay_attack(c, t, q, rnd(c) % N_CHAIN_ATTACKS);
			}
			break;
		case 1:
			wr8(t->v.common, CC_STATUS, 0);
			break;
		case 2:
			notify_garbage(c, t, 64);
			break;
		case 3:
			common_garbage(c, t);
			break;
		case 4:
			if (up(c, t, features(c, t), (u16)(rnd(c) % (t->nvec + 1)))) {
				u32 qi = attack_queue(c, t);
				request(c, t, &c->q[qi], qi, 0, 0, c->scratch + S_DATA);
				vq_kick(&c->q[qi], 0);
			}
			break;
		case 5:
			if (t->msix)
				msix_sane(c, t, rnd(c) % t->nvec, rnd(c) % 2);
			break;
		case 6:
			device_garbage(c, t, 4);
			break;
		case 7:
			if (t->msix) {
				cfg_lock();
				msix_control(t, rnd(c) % 4 ? MSIX_CTL_ENABLE : MSIX_CTL_FMASK);
				cfg_unlock();
			}
			break;
		case 8: { /* the BAR vanishes and comes back under the others */
			cfg_lock();
			u16 cmd = (u16)cfg_read32(t->v.dev, PCI_COMMAND);
			cfg_write16(t->v.dev, PCI_COMMAND, cmd & ~PCI_CMD_MEM);
			cfg_write16(t->v.dev, PCI_COMMAND, cmd | PCI_CMD_MEM | PCI_CMD_MASTER);
			cfg_unlock();
			break;
		}
		default:
			cfg_lock();
			pcicfg_window(c, t);
			cfg_unlock();
		}
	}
}

/* ---- the other phases ---- */

static int spared(u32 port)
{
	return port == 0x64 || port == 0x604 || port == 0x605 || port == 0xcf9 || (port >= 0x3f8 && port < 0x400) ||
	       (port >= 0xcf8 && port < 0xd00) || (port >= 0x600 && port < 0x60c && port != 0x602);
}

static void ports(struct cpu *c)
{
	for (u32 port = 0; port < 0x10000; port += port < 0x1000 ? 1 : 16) {
		if (spared(port) || (port >> 4) % ncpus != c->id)
			continue;
		outb((u16)port, (u8)rnd(c));
		(void)inb((u16)port);
		if (!(port & 1) && !spared(port + 1)) {
			outw((u16)port, (u16)rnd(c));
			(void)inw((u16)port);
		}
		if (!(port & 3) && !spared(port + 1) && !spared(port + 2) && !spared(port + 3)) {
			outl((u16)port, rnd(c));
			(void)inl((u16)port);
		}
	}
}

/* hot_ports is the background the APs make while the boot CPU works on
 * virtio alone: the legacy devices whose index/data pairs two CPUs can
 * interleave. */
static void hot_ports(struct cpu *c)
{
	static const u16 hot[] = {0x20, 0x21, 0xa0, 0xa1, 0x40, 0x41, 0x42, 0x43, 0x60, 0x61, 0x70, 0x71, 0x80, 0x602, 0x608};
	u16 p = hot[rnd(c) % (sizeof(hot) / sizeof(hot[0]))];
	if (rnd(c) % 2)
		outb(p, (u8)rnd(c));
	(void)inb(p);
}

static void uart(struct cpu *c)
{
	u32 n = c->id ? 1024 : 16384;
	for (u32 i = 0; i < n; i++)
		outb(0x3f8, (u8)(' ' + i % 95));
	for (u32 i = 0; i < 256; i++)
		outb((u16)(0x3f9 + rnd(c) % 7), (u8)rnd(c));
}

static void uart_restore(void)
{
	outb(0x3fb, 0x80); /* DLAB: the divisor */
	outb(0x3f8, 1);
	outb(0x3f9, 0);
	outb(0x3fb, 0x03); /* 8N1 */
	outb(0x3f9, 0);    /* no interrupts */
	outb(0x3fa, 0x07); /* FIFO on and cleared */
	outb(0x3fc, 0x03); /* DTR, RTS, no loopback */
}

static void pci(struct cpu *c)
{
	for (u32 dev = c->id; dev < 32; dev += ncpus)
		for (u32 reg = 0; reg < 256; reg += 4) {
			cfg_addr(dev, reg);
			outl(0xcfc, rnd(c));
			(void)inl(0xcfc);
		}
	/* Unaligned and odd-width accesses to the data ports. */
	for (u32 i = 0; i < 256 / ncpus; i++) {
		outl(0xcf8, rnd(c));
		outb((u16)(0xcfc + rnd(c) % 4), (u8)rnd(c));
		(void)inw(0xcfe);
	}
}

static void mmio(struct cpu *c)
{
	for (u32 i = 0; i < 4096 / ncpus + 512; i++) {
		u64 a = PCI_HOLE_LO + ((u64)rnd(c) % (PCI_HOLE_HI - PCI_HOLE_LO));
		*(volatile u32 *)(a & ~3ull) = rnd(c);
		(void)*(volatile u32 *)(a & ~3ull);
	}
}

static void run_phase(struct cpu *c, u32 ph, u32 gen)
{
	switch (ph) {
	case PH_PORTS:
		ports(c);
		break;
	case PH_UART:
		uart(c);
		break;
	case PH_BACKGROUND:
		while (go_gen == gen)
			hot_ports(c);
		break;
	case PH_VIRTIO_SMP: /* each device at least once, some by two CPUs */
		for (u32 j = 0; j < (ntgts + ncpus - 1) / ncpus; j++)
			attack_quick(c, &tgts[(c->id + j * ncpus) % ntgts]);
		break;
	case PH_CHAOS:
		chaos(c, &tgts[chaos_target]);
		break;
	case PH_PCI:
		pci(c);
		break;
	case PH_MMIO:
		mmio(c);
		break;
	}
}

/* ap_main runs at start and again after every interrupt (cpus.h), so
 * what it has done lives in ap_seen and ap_done. An AP with nothing to do
 * halts; the boot CPU wakes it with an IPI. */
void ap_main(u32 id)
{
	struct cpu *c = &cpus[id];
	ap_enter(!ap_up[id]);
	ap_up[id] = 1;
	for (;;) {
		u32 gen = go_gen;
		if (gen == ap_seen[id]) {
			ap_wait();
			continue;
		}
		ap_seen[id] = gen;
		u32 ph = go_what;
		if (ph == PH_PARK) {
			ap_done[id] = gen;
			for (;;)
				__asm__ volatile("cli; hlt");
		}
		/* One AP is background enough; the rest leave the host's CPUs
		 * to the boot CPU. */
		if (ph != PH_BACKGROUND || id == 1)
			run_phase(c, ph, gen);
		ap_done[id] = gen;
	}
}

static void go(u32 ph)
{
	go_what = ph;
	barrier();
	go_gen = go_gen + 1;
	if (ncpus > 1)
		aps_wake();
}

/* wait_aps waits for every AP to finish the current generation. */
static void wait_aps(void)
{
	for (u32 k = 1; k < ncpus; k++) {
		struct pm_clock clk;
		pm_clock_start(&clk);
		while (ap_done[k] != go_gen) {
			if (pm_clock_ms(&clk) > 60000) {
				uart_puts("hostile: cpu ");
				uart_dec(k);
				uart_puts(" stuck\n");
				break;
			}
		}
	}
}

/* all runs phase ph on every CPU and returns when all are done. */
static void all(u32 ph)
{
	go(ph);
	run_phase(&cpus[0], ph, go_gen);
	wait_aps();
}

static void done(const char *phase)
{
	uart_puts("hostile: ");
	uart_puts(phase);
	uart_puts(" done\n");
}

static void find_targets(void)
{
	for (u32 dev = 0; dev < 32; dev++) {
		u32 r = cfg_read32(dev, 0);
		if ((r & 0xffff) != VIRTIO_VENDOR || (r >> 16) < VIRTIO_DEVID_BASE)
			continue;
		struct target *t = &tgts[ntgts];
		if (!vdev_open(&t->v, dev))
			continue;
		t->id = (r >> 16) - VIRTIO_DEVID_BASE;
		t->nq = rd16(t->v.common, CC_NUM_QUEUES);
		t->nq = t->nq < 1 ? 1 : t->nq > NQ ? NQ : t->nq;
		t->msix = vdev_find_cap(dev, PCI_CAP_MSIX);
		if (t->msix) {
			u32 tbl = cfg_read32(dev, t->msix + MSIX_TABLE), pba = cfg_read32(dev, t->msix + MSIX_PBA);
			t->nvec = (cfg_read16(dev, t->msix + MSIX_CTL) & MSIX_CTL_SIZE) + 1u;
			t->table = (volatile u8 *)(bar_base(dev, tbl & 7) + (tbl & ~7u));
			t->pba = (volatile u8 *)(bar_base(dev, pba & 7) + (pba & ~7u));
		}
		u32 pos = cfg_read8(dev, PCI_CAP_PTR) & 0xfc;
		for (int n = 0; pos && n < 48; n++, pos = cfg_read8(dev, pos + 1) & 0xfc)
			if (cfg_read8(dev, pos) == PCI_CAP_VNDR && cfg_read8(dev, pos + 3) == CAP_PCI_CFG)
				t->pcicfg = pos;
		ntgts++;
	}
}

static int end_poweroff;

static void finish(void) __attribute__((noreturn));
static void finish(void)
{
	uart_puts("hostile: awake\n");
	uart_puts("hostile: survived\n");
	if (end_poweroff)
		outw(0x604, (5 << 10) | (1 << 13)); /* PM1a_CNT: SLP_TYP \_S5, SLP_EN */
	reset();
}

int main(const u8 *boot_params)
{
	u32 seed = (u32)opt(boot_params, "seed=", 0x9e3779b9);
	u64 want = opt(boot_params, "cpus=", 1);
	u64 idle = opt(boot_params, "idle=", 1000);
	end_poweroff = cmdline_has((const char *)(u64)bp32(boot_params, BP_CMD_LINE_PTR), "end=poweroff");
	ncpus = want < 1 ? 1 : want > CPUS_MAX ? CPUS_MAX : (u32)want;
	ram_end = find_ram_end(boot_params);
	if (ram_end < RAM_NEEDED) {
		uart_puts("hostile: needs 48 MiB of RAM from 16 MiB\n");
		return 1;
	}
	for (u32 k = 0; k < CPUS_MAX; k++) {
		cpus[k].id = k;
		cpus[k].rng = (seed ^ (k * 0x6d2b79f5u)) ? seed ^ (k * 0x6d2b79f5u) : 1;
		cpus[k].scratch = (u8 *)(SCRATCH_BASE + k * SCRATCH_SIZE);
	}
	uart_puts("hostile: seed ");
	uart_dec(seed);
	uart_puts(" cpus ");
	uart_dec(ncpus);
	uart_puts("\n");
	find_targets();

	if (ncpus > 1) {
		aps_start("hostile");
		for (u32 k = 1; k < ncpus; k++) {
			struct pm_clock clk;
			pm_clock_start(&clk);
			while (!ap_up[k] && pm_clock_ms(&clk) < 2000)
				;
			if (!ap_up[k]) {
				uart_puts("hostile: cpu ");
				uart_dec(k);
				uart_puts(" did not start\n");
				ncpus = k;
				break;
			}
		}
		uart_puts("hostile: ");
		uart_dec(ncpus);
		uart_puts(" cpus attacking\n");
	}

	all(PH_PORTS);
	done("ports");
	all(PH_UART);
	uart_restore();
	uart_puts("\n");
	done("uart");
	go(PH_BACKGROUND);
	for (u32 i = 0; i < ntgts; i++)
		attack(&cpus[0], &tgts[i]);
	done("virtio");
	all(PH_VIRTIO_SMP);
	done("virtio-smp");
	for (u32 i = 0; i < ntgts; i++) {
		chaos_target = i;
		if (tgts[i].msix) {
			for (u32 v = 0; v < tgts[i].nvec; v++)
				msix_sane(&cpus[0], &tgts[i], v, 1);
			msix_control(&tgts[i], MSIX_CTL_ENABLE);
		}
		all(PH_CHAOS);
		dev_reset(&tgts[i]);
		msix_tidy(&cpus[0], &tgts[i]);
		u16 cmd = (u16)cfg_read32(tgts[i].v.dev, PCI_COMMAND);
		cfg_write16(tgts[i].v.dev, PCI_COMMAND, cmd | PCI_CMD_MEM | PCI_CMD_MASTER);
	}
	done("chaos");
	all(PH_PCI);
	outl(0xcf8, 0);
	done("pci");
	all(PH_MMIO);
	done("mmio");
	go(PH_PARK);
	wait_aps();
	uart_puts("hostile: idle\n");
	sleep_ms("hostile", idle, finish);
}
