/* benchnet: the virtio-net data path. On the first virtio-net function of
 * PCI bus 0 (polled, VERSION_1 and MAC only, receiveq 0 and transmitq 1)
 * it sends n (the kernel command line's "n=N", default 2000) frames of
 * 1514 bytes to 02:00:00:00:00:01, then receives n frames of EtherType
 * 0x88b5 (the IEEE local experimental type; other frames are dropped
 * uncounted), each phase between begin and end lines (bench.h):
 *
 *   benchnet: n=2000 pm=1 mac 02:00:00:00:00:02
 *   benchnet: tx begin
 *   benchnet: tx end n=2000 bytes=3028000 us=... (.../s)
 *   benchnet: rx begin
 *   benchnet: rx end n=2000 bytes=3028000 us=... (.../s)
 *   benchnet: done
 *
 * Both queues keep all QSIZE buffers posted: each pass reaps whatever the
 * device returned, posts the buffers again and notifies once. The host
 * should start sending when "rx begin" appears; if no frame comes for
 * 10 s (by the PM timer, or a poll count without one) the guest prints
 * "benchnet: rx timeout after K frames" and ends. The guest never reads or
 * writes frame bodies in the loops, so the time is the VMM's and the
 * host's, not the emulated guest's.
 */
#include "bench.h"
#include "vdrv.h"

#define GUEST "benchnet"
#define FRAME 1514
#define RX_TIMEOUT_MS 10000
#define TICK_EVERY 64

static const u8 host_mac[6] = {0x02, 0, 0, 0, 0, 0x01};

static u8 txbufs[QSIZE][NET_HDR + FRAME] __attribute__((aligned(16)));
static u8 rxbufs[QSIZE][NET_HDR + FRAME] __attribute__((aligned(16)));

static void put_mac(const u8 *m)
{
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < 6; i++) {
		if (i)
			uart_putc(':');
		uart_putc(hex[m[i] >> 4]);
		uart_putc(hex[m[i] & 15]);
	}
}

/* polls counts the phase's looks at the used ring and kicks its
 * notifications: polls beyond one a frame are the guest waiting for the
 * VMM, and each kick is an exit. */
static u64 polls, kicks;

static void tx(u64 n, struct bench_clock *c)
{
	struct vq *q = &vqs[TXQ];
	u64 posted = 0, done = 0;
	polls = kicks = 0;
	for (u16 i = 0; i < QSIZE && posted < n; i++, posted++) {
		set_desc(q, i, txbufs[i], NET_HDR + FRAME, 0, 1);
		vq_publish(q, i);
	}
	vq_notify(q);
	kicks++;
	while (done < n) {
		struct virtq_used_elem e;
		int again = 0;
		while (++polls, vq_used(q, &e)) {
			if (++done % TICK_EVERY == 0)
				bench_tick(c);
			if (posted < n) {
				vq_publish(q, (u16)e.id);
				posted++;
				again = 1;
			}
		}
		if (again) {
			vq_notify(q);
			kicks++;
		}
	}
}

/* rx receives n test frames; the number it got. */
static u64 rx(u64 n, struct bench_clock *c)
{
	struct vq *q = &vqs[RXQ];
	struct pm_clock idle;
	u64 got = 0;
	u32 idle_polls = 0;
	polls = kicks = 0;
	pm_clock_start(&idle);
	while (got < n) {
		struct virtq_used_elem e;
		int again = 0;
		while (++polls, vq_used(q, &e)) {
			const u8 *f = rxbufs[e.id % QSIZE] + NET_HDR;
			if (e.len >= NET_HDR + ETH_HLEN && (f[12] << 8 | f[13]) == ETH_TYPE_TEST && ++got % TICK_EVERY == 0)
				bench_tick(c);
			vq_publish(q, (u16)e.id);
			again = 1;
		}
		if (again) {
			vq_notify(q);
			kicks++;
			pm_clock_start(&idle);
			idle_polls = 0;
		} else if (++idle_polls % 4096 == 0 && (c->have ? pm_clock_ms(&idle) > RX_TIMEOUT_MS : idle_polls >= POLL_LIMIT * 4)) {
			uart_puts(GUEST ": rx timeout after ");
			uart_dec(got);
			uart_puts(" frames\n");
			break;
		}
	}
	return got;
}

static void put_counts(const char *phase)
{
	bench_line(GUEST, phase, " polls=");
	uart_dec(polls);
	uart_puts("\n");
	bench_line(GUEST, phase, " kicks=");
	uart_dec(kicks);
	uart_puts("\n");
}

int main(const u8 *boot_params)
{
	u64 n = cmdline_num(boot_params, "n=", 2000);
	struct bench_clock c = {.have = bench_has_pm()};
	struct vdev v;

	u32 dev = vdev_find(0, VIRTIO_ID_NET);
	if (dev == 32 || !vdev_open(&v, dev)) {
		uart_puts(GUEST ": no network device\n");
		return 1;
	}
	if (!bring_up(&v, GUEST, NET_F_MAC, 2))
		return 1;
	u8 mac[6];
	for (int i = 0; i < 6; i++)
		mac[i] = rd8(v.device, (u32)i);
	uart_puts(GUEST ": n=");
	uart_dec(n);
	uart_puts(c.have ? " pm=1" : " pm=0");
	uart_puts(" mac ");
	put_mac(mac);
	uart_puts("\n");

	for (int i = 0; i < QSIZE; i++) {
		u8 *f = txbufs[i] + NET_HDR;
		memcpy(f, host_mac, 6);
		memcpy(f + 6, mac, 6);
		f[12] = ETH_TYPE_TEST >> 8;
		f[13] = ETH_TYPE_TEST & 0xff;
		set_desc(&vqs[RXQ], i, rxbufs[i], sizeof(rxbufs[i]), VIRTQ_DESC_F_WRITE, 1);
		vq_publish(&vqs[RXQ], (u16)i);
	}
	vq_notify(&vqs[RXQ]);

	bench_begin(&c, GUEST, "tx");
	tx(n, &c);
	bench_end(&c, GUEST, "tx", n, n * FRAME);
	put_counts("tx");

	bench_begin(&c, GUEST, "rx");
	u64 got = rx(n, &c);
	if (got == n) {
		bench_end(&c, GUEST, "rx", n, n * FRAME);
		put_counts("rx");
	}
	vdev_reset(&v, GUEST);
	uart_puts(GUEST ": done\n");
	bench_flush();
	return 0;
}
