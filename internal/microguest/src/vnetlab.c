/* vnetlab: one station on a virtual L2 segment (a vmm/netswitch switch
 * that several vmm processes join with --net socket=PATH). It drives the
 * network device with the polled driver in vdrv.h, negotiating MAC only,
 * and takes its role from the kernel command line:
 *
 *   bcast       send one broadcast frame, "hello from <mac>"
 *   send=MAC    send one unicast frame to MAC, "ping from <mac>"
 *   reply       answer every ping addressed to this station with a
 *               unicast "pong from <mac>" to its source
 *   delay=MS    wait MS milliseconds after "ready" before sending (in a lab
 *               the other stations' VMs start at the same time)
 *   listen=MS   listen MS milliseconds instead of 30 s
 *
 * Sends happen in command-line order, after "ready". Every frame is
 * EtherType 0x88b5 (IEEE local experimental), with no padding. It prints
 * every frame received, whole, until a 'q' comes on the console (or 30 s
 * pass), then resets the device and ends.
 *
 * Output:
 *   vnetlab: features ok
 *   vnetlab: mac 02:00:00:00:00:0a
 *   vnetlab: device features 0x18020     (the device-type bits, 0-23, offered)
 *   vnetlab: ready                       (receive buffers posted)
 *   vnetlab: sent 42 bytes to ff:ff:ff:ff:ff:ff      (one line per frame sent)
 *   vnetlab: rx 41 bytes 02:00:00:00:00:0b > 02:00:00:00:00:0a type 88b5: 0200...
 *                                        (one line per frame received: source,
 *                                        destination, type, the frame in hex)
 *   vnetlab: done, 1 received            (or "vnetlab: timeout, 1 received")
 */
#include "vdrv.h"

#define FRAME_MAX 1518 /* the socket backend's MaxSocketFrame */
#define RXBUFS 4
#define LISTEN_MS 30000


static const u8 bcast_mac[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static u8 rxbufs[RXBUFS][NET_HDR + FRAME_MAX] __attribute__((aligned(16)));
static u8 txbuf[NET_HDR + ETH_HLEN + 64] __attribute__((aligned(16)));
static u8 mymac[6];
static struct vdev dev;

static const char hexdig[] = "0123456789abcdef";

/* fmt_mac writes m as xx:xx:xx:xx:xx:xx (17 bytes, no NUL) to out. */
static void fmt_mac(char *out, const u8 *m)
{
	for (int i = 0; i < 6; i++) {
		out[3 * i] = hexdig[m[i] >> 4];
		out[3 * i + 1] = hexdig[m[i] & 15];
		if (i < 5)
			out[3 * i + 2] = ':';
	}
}

static void put_mac(const u8 *m)
{
	char s[18];
	fmt_mac(s, m);
	s[17] = 0;
	uart_puts(s);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* parse_mac reads xx:xx:xx:xx:xx:xx ending in a space or NUL; 1 if it did. */
static int parse_mac(const char *s, u8 *m)
{
	for (int i = 0; i < 6; i++) {
		int hi = hexval(s[3 * i]), lo = hexval(s[3 * i + 1]);
		char sep = s[3 * i + 2];
		if (hi < 0 || lo < 0 || (i < 5 && sep != ':') || (i == 5 && sep != ' ' && sep != 0))
			return 0;
		m[i] = (u8)(hi << 4 | lo);
	}
	return 1;
}

static int starts(const char *s, const char *prefix)
{
	while (*prefix)
		if (*s++ != *prefix++)
			return 0;
	return 1;
}

/* token reports whether the word at s (ending in a space or NUL) is w. */
static int token(const char *s, const char *w)
{
	while (*w)
		if (*s++ != *w++)
			return 0;
	return *s == ' ' || *s == 0;
}

static int same(const u8 *a, const u8 *b, u32 n)
{
	for (u32 i = 0; i < n; i++)
		if (a[i] != b[i])
			return 0;
	return 1;
}

static const char *cmdline(const u8 *bp)
{
	u64 ptr = (u64)bp32(bp, BP_EXT_CMD_LINE_PTR) << 32 | bp32(bp, BP_CMD_LINE_PTR);
	return ptr ? (const char *)ptr : "";
}

/* send_frame sends "<what> from <mymac>" to dst; 1 when the device took it. */
static int send_frame(const u8 *dst, const char *what)
{
	u8 *f = txbuf + NET_HDR;
	memset(txbuf, 0, NET_HDR); /* no offload asked for */
	memcpy(f, dst, 6);
	memcpy(f + 6, mymac, 6);
	f[12] = ETH_TYPE_TEST >> 8;
	f[13] = ETH_TYPE_TEST & 0xff;
	u32 n = ETH_HLEN;
	for (const char *p = what; *p; p++)
		f[n++] = (u8)*p;
	for (const char *p = " from "; *p; p++)
		f[n++] = (u8)*p;
	fmt_mac((char *)f + n, mymac);
	n += 17;
	set_desc(&vqs[TXQ], 0, txbuf, NET_HDR + n, 0, 1);
	if (submit(&dev, &vqs[TXQ], "vnetlab") < 0)
		return 0;
	uart_puts("vnetlab: sent ");
	uart_dec(n);
	uart_puts(" bytes to ");
	put_mac(dst);
	uart_puts("\n");
	return 1;
}

static void post_rx(u16 i)
{
	set_desc(&vqs[RXQ], i, rxbufs[i], sizeof(rxbufs[i]), VIRTQ_DESC_F_WRITE, 1);
	vq_kick(&vqs[RXQ], i);
}

/* print_frame prints a received frame whole. */
static void print_frame(const u8 *f, u32 n)
{
	uart_puts("vnetlab: rx ");
	uart_dec(n);
	uart_puts(" bytes ");
	put_mac(f + 6);
	uart_puts(" > ");
	put_mac(f);
	uart_puts(" type ");
	for (int i = 12; i < 14; i++) {
		uart_putc(hexdig[f[i] >> 4]);
		uart_putc(hexdig[f[i] & 15]);
	}
	uart_puts(": ");
	for (u32 i = 0; i < n; i++) {
		uart_putc(hexdig[f[i] >> 4]);
		uart_putc(hexdig[f[i] & 15]);
	}
	uart_puts("\n");
}

/* is_ping reports whether f (n bytes) is a ping addressed to this station. */
static int is_ping(const u8 *f, u32 n)
{
	static const char ping[] = "ping from ";
	if (n < ETH_HLEN + sizeof(ping) - 1 || !same(f, mymac, 6))
		return 0;
	return same(f + ETH_HLEN, (const u8 *)ping, sizeof(ping) - 1);
}

/* do_sends sends the frames the command line asks for, in its order. */
static void do_sends(const char *cl)
{
	for (const char *p = cl; *p;) {
		u8 dst[6];
		if (token(p, "bcast"))
			send_frame(bcast_mac, "hello");
		else if (starts(p, "send=")) {
			if (parse_mac(p + 5, dst))
				send_frame(dst, "ping");
			else
				uart_puts("vnetlab: bad MAC in send=\n");
		}
		while (*p && *p != ' ')
			p++;
		while (*p == ' ')
			p++;
	}
}

/* option returns the number after the word "name=" on the command
 * line, or def when there is none. */
static u64 option(const char *cl, const char *name, u64 def)
{
	for (const char *p = cl; *p;) {
		if (starts(p, name)) {
			u64 v = 0;
			const char *q = p;
			while (*q && *q != '=')
				q++;
			for (q++; *q >= '0' && *q <= '9'; q++)
				v = v * 10 + (u64)(*q - '0');
			return v;
		}
		while (*p && *p != ' ')
			p++;
		while (*p == ' ')
			p++;
	}
	return def;
}

/* listen prints frames and answers pings until 'q' on the console or
 * ms milliseconds pass; it returns 1 for 'q'. */
static int listen(int reply, u64 ms, u64 *count)
{
	struct virtq_used_elem e;
	struct pm_clock c;
	pm_clock_start(&c);
	while (pm_clock_ms(&c) < ms) {
		if (uart_poll() == 'q')
			return 1;
		if (!vq_used(&vqs[RXQ], &e))
			continue;
		u16 i = (u16)e.id;
		if (i >= RXBUFS) {
			uart_puts("vnetlab: bad used id\n");
			return 0;
		}
		if (e.len >= NET_HDR + ETH_HLEN) {
			const u8 *f = rxbufs[i] + NET_HDR;
			u32 n = e.len - NET_HDR;
			(*count)++;
			print_frame(f, n);
			if (reply && is_ping(f, n))
				send_frame(f + 6, "pong");
		}
		post_rx(i);
	}
	return 0;
}

int main(const u8 *boot_params)
{
	const char *cl = cmdline(boot_params);
	u32 d = vdev_find(0, VIRTIO_ID_NET);
	if (d == 32 || !vdev_open(&dev, d)) {
		uart_puts("vnetlab: no network device\n");
		return 1;
	}
	if (!bring_up(&dev, "vnetlab", 1u << 5 /* VIRTIO_NET_F_MAC */, 2))
		return 1;
	wr32(dev.common, CC_DEV_FEAT_SEL, 0);
	u32 offered = rd32(dev.common, CC_DEV_FEAT) & 0xffffff; /* 24 up: the transport's */
	for (int i = 0; i < 6; i++)
		mymac[i] = rd8(dev.device, (u32)i);
	uart_puts("vnetlab: mac ");
	put_mac(mymac);
	uart_puts("\nvnetlab: device features ");
	uart_hex(offered);
	uart_puts("\n");

	for (u16 i = 0; i < RXBUFS; i++)
		post_rx(i);
	uart_puts("vnetlab: ready\n");
	u64 delay = option(cl, "delay=", 0);
	if (delay) {
		struct pm_clock c;
		pm_clock_start(&c);
		while (pm_clock_ms(&c) < delay)
			;
	}
	do_sends(cl);

	u64 count = 0;
	int quit = listen(cmdline_has(cl, "reply"), option(cl, "listen=", LISTEN_MS), &count);
	uart_puts(quit ? "vnetlab: done, " : "vnetlab: timeout, ");
	uart_dec(count);
	uart_puts(" received\n");
	vdev_reset(&dev, "vnetlab");
	return 0;
}
