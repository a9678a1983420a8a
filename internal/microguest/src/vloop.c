/* vloop: a loopback guest end for the agent's port. It drives the
 * multiport virtio console as Linux does (§5.3.6), finds the port the host
 * named "vmm.agent", opens it and writes every byte it receives there
 * back out on the same port, in order, until the host closes its end.
 * It knows nothing of frames: the host's side must carry them whole both
 * ways. RX_BUFS receive buffers of RX_BUF bytes stay posted, outside the
 * image at BUF_BASE (identity-mapped RAM), so megabytes pass quickly;
 * each filled one is sent back as it is, then posted again.
 *
 * Console:
 *   vloop: features ok
 *   vloop: ready
 *   vloop: host closed after N bytes     (once the host's end closes)
 */
#include "vdrv.h"
#include "vcons.h"

#define BUF_BASE 0x1000000ul /* 16 MiB: the test gives the guest 64 MiB */
#define RX_BUFS 4
#define RX_BUF (64u << 10)

static u8 *rx_buf(u32 i) { return (u8 *)(BUF_BASE + (u64)i * RX_BUF); }

static void post_rx(struct vq *q, u16 i)
{
	set_desc(q, i, rx_buf(i), RX_BUF, VIRTQ_DESC_F_WRITE, 1);
	vq_kick(q, i);
}

/* send_back queues len bytes of buffer i on the port's transmitq and
 * waits, however long, for the device to take them: a slow host client
 * slows the guest, as it would Linux's blocking write. */
static void send_back(struct vq *q, u32 i, u32 len)
{
	struct virtq_used_elem e;
	set_desc(q, 0, rx_buf(i), len, 0, 1);
	vq_kick(q, 0);
	while (!vq_used(q, &e))
		;
}

int main(const u8 *boot_params)
{
	(void)boot_params;
	(void)write_port; /* vcons.h's copies through a small buffer; ours go back in place */
	u32 nports = vcons_up("vloop", 1, VC_PORTS);
	if (!nports)
		return 1;

	struct pm_clock clk;
	pm_clock_start(&clk);
	u32 port;
	for (;;) {
		handle_ctrl(VC_PORTS, 0);
		port = port_named("vmm.agent");
		if (port != VC_PORTS && host_open[port])
			break;
		if (pm_clock_ms(&clk) > 5000) {
			uart_puts("vloop: no open port named vmm.agent\n");
			return 1;
		}
	}
	struct vq *rx = &vqs[rx_queue(port)], *tx = &vqs[tx_queue(port)];
	for (u16 i = 0; i < RX_BUFS; i++)
		post_rx(rx, i);
	send_ctrl(port, PORT_OPEN, 1);
	uart_puts("vloop: ready\n");

	u64 total = 0;
	int closed = 0;
	while (!closed || *(volatile u16 *)&rx->used.idx != rx->used_idx) {
		struct virtq_used_elem e;
		if (vq_used(rx, &e)) {
			if (e.id >= RX_BUFS || e.len > RX_BUF) {
				uart_puts("vloop: bad used element\n");
				return 1;
			}
			if (e.len)
				send_back(tx, e.id, e.len);
			total += e.len;
			post_rx(rx, (u16)e.id);
		}
		handle_ctrl(port, &closed);
	}
	uart_puts("vloop: host closed after ");
	uart_dec(total);
	uart_puts(" bytes\n");
	return 0;
}
