/* virtionet: drives the network device with the polled driver in vdrv.h:
 * VERSION_1 and MAC only, receiveq 0 and transmitq 1. It prints the MAC
 * from the device configuration, posts one receive buffer, sends one frame
 * (to 02:00:00:00:00:01, EtherType 0x88b5, the IEEE local experimental
 * type) and waits up to 10 s for a frame of that type, dropping others
 * (the host's own traffic) by giving their buffer back.
 *
 * Every packet starts with the 12-byte struct virtio_net_hdr (§5.1.6),
 * zero on transmit (no offloads were negotiated).
 *
 * Output:
 *   virtio-net: features ok
 *   virtio-net: mac 02:00:00:00:00:02
 *   virtio-net: sent
 *   virtio-net: rx ready
 *   virtio-net: got 33 bytes from 02:00:00:00:00:01 num_buffers 1: hello from the host
 */
#include "vdrv.h"

#define NET_HDR_NUM_BUFFERS 10

static const u8 host_mac[6] = {0x02, 0, 0, 0, 0, 0x01};
static const char hello[] = "hello from the guest";

static u8 txbuf[NET_HDR + ETH_HLEN + sizeof(hello)] __attribute__((aligned(16)));
static u8 rxbuf[NET_HDR + 1514] __attribute__((aligned(16)));

static void put_mac(const volatile u8 *m)
{
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < 6; i++) {
		if (i)
			uart_putc(':');
		uart_putc(hex[m[i] >> 4]);
		uart_putc(hex[m[i] & 15]);
	}
}

static void post_rx(void)
{
	set_desc(&vqs[RXQ], 0, rxbuf, sizeof(rxbuf), VIRTQ_DESC_F_WRITE, 1);
	vq_kick(&vqs[RXQ], 0);
}

/* receive waits for a test frame; 1 when one came and was printed. */
static int receive(void)
{
	struct virtq_used_elem e;
	struct pm_clock c;
	pm_clock_start(&c);
	while (pm_clock_ms(&c) < 10000) {
		if (!vq_used(&vqs[RXQ], &e))
			continue;
		u8 *f = rxbuf + NET_HDR;
		if (e.len < NET_HDR + ETH_HLEN || (f[12] << 8 | f[13]) != ETH_TYPE_TEST) {
			post_rx(); /* not ours: hand the buffer back */
			continue;
		}
		u32 n = e.len - NET_HDR;
		uart_puts("virtio-net: got ");
		uart_dec(n);
		uart_puts(" bytes from ");
		put_mac(f + 6);
		uart_puts(" num_buffers ");
		uart_dec(rxbuf[NET_HDR_NUM_BUFFERS] | rxbuf[NET_HDR_NUM_BUFFERS + 1] << 8);
		uart_puts(": ");
		for (u32 i = ETH_HLEN; i < n; i++)
			uart_putc(f[i] >= 0x20 && f[i] < 0x7f ? (char)f[i] : '.');
		uart_puts("\n");
		return 1;
	}
	uart_puts("virtio-net: nothing received in 10 s\n");
	return 0;
}

int main(const u8 *boot_params)
{
	(void)boot_params;
	struct vdev v;
	u32 dev = vdev_find(0, VIRTIO_ID_NET);
	if (dev == 32 || !vdev_open(&v, dev)) {
		uart_puts("virtio-net: no network device\n");
		return 1;
	}
	if (!bring_up(&v, "virtio-net", NET_F_MAC, 2))
		return 1;
	u8 mac[6];
	for (int i = 0; i < 6; i++)
		mac[i] = rd8(v.device, (u32)i);
	uart_puts("virtio-net: mac ");
	put_mac(mac);
	uart_puts("\n");

	post_rx();

	u8 *f = txbuf + NET_HDR;
	memset(txbuf, 0, NET_HDR);
	memcpy(f, host_mac, 6);
	memcpy(f + 6, mac, 6);
	f[12] = ETH_TYPE_TEST >> 8;
	f[13] = ETH_TYPE_TEST & 0xff;
	memcpy(f + ETH_HLEN, hello, sizeof(hello) - 1);
	set_desc(&vqs[TXQ], 0, txbuf, NET_HDR + ETH_HLEN + sizeof(hello) - 1, 0, 1);
	if (submit(&v, &vqs[TXQ], "virtio-net") < 0)
		return 1;
	uart_puts("virtio-net: sent\n");
	uart_puts("virtio-net: rx ready\n");
	receive();
	vdev_reset(&v, "virtio-net");
	return 0;
}
