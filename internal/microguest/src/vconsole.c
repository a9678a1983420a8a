/* vconsole: drives a multiport virtio console as Linux's driver does
 * (§5.3.6): negotiates MULTIPORT, sets up every queue, posts control
 * buffers, sends DEVICE_READY, answers each PORT_ADD with PORT_READY and
 * collects the ports' names and host-open states. Then it opens
 * "vmm.stdout" and "vmm.stderr", writes a line on each (and 256 bytes
 * 0..255 on stdout) and closes them; and reads "vmm.stdin" until the host
 * closes it (PORT_OPEN 0), printing what it got on the UART.
 *
 * Output:
 *   vconsole: features ok
 *   vconsole: port 0 vmm.stdin open
 *   vconsole: port 1 vmm.stdout open
 *   vconsole: port 2 vmm.stderr open
 *   vconsole: stdout and stderr written
 *   vconsole: stdin got N bytes: <text>
 */
#include "vdrv.h"
#include "vcons.h"

#define MAX_PORTS 3
static u8 rxbuf[256] __attribute__((aligned(16)));

int main(const u8 *boot_params)
{
	(void)boot_params;
	if (!vcons_up("vconsole", MAX_PORTS, MAX_PORTS))
		return 1;

	struct pm_clock clk;
	pm_clock_start(&clk);
	for (;;) {
		handle_ctrl(MAX_PORTS, 0);
		int ready = 1;
		for (u32 i = 0; i < MAX_PORTS; i++)
			ready &= added[i] && names[i][0] && host_open[i];
		if (ready)
			break;
		if (pm_clock_ms(&clk) > 5000) {
			uart_puts("vconsole: handshake incomplete\n");
			return 1;
		}
	}
	for (u32 i = 0; i < MAX_PORTS; i++) {
		uart_puts("vconsole: port ");
		uart_dec(i);
		uart_puts(" ");
		uart_puts(names[i]);
		uart_puts(" open\n");
	}

	u32 out = port_named("vmm.stdout"), err = port_named("vmm.stderr"), in = port_named("vmm.stdin");
	if (out == VC_PORTS || err == VC_PORTS || in == VC_PORTS) {
		uart_puts("vconsole: missing a stdio port\n");
		return 1;
	}
	static const char hello_out[] = "hello on stdout\n", hello_err[] = "hello on stderr\n";
	u8 pattern[256];
	for (u32 i = 0; i < 256; i++)
		pattern[i] = (u8)i;
	send_ctrl(out, PORT_OPEN, 1);
	send_ctrl(err, PORT_OPEN, 1);
	if (!write_port(out, hello_out, sizeof(hello_out) - 1) || !write_port(err, hello_err, sizeof(hello_err) - 1) ||
	    !write_port(out, pattern, sizeof(pattern)))
		return 1;
	send_ctrl(out, PORT_OPEN, 0);
	send_ctrl(err, PORT_OPEN, 0);
	uart_puts("vconsole: stdout and stderr written\n");

	/* stdin: open it, keep one buffer posted, read until the host closes. */
	struct vq *q = &vqs[rx_queue(in)];
	char got[128];
	u32 n = 0;
	int closed = 0;
	set_desc(q, 0, rxbuf, sizeof(rxbuf), VIRTQ_DESC_F_WRITE, 1);
	vq_kick(q, 0);
	send_ctrl(in, PORT_OPEN, 1);
	pm_clock_start(&clk);
	while (!closed || *(volatile u16 *)&q->used.idx != q->used_idx) {
		struct virtq_used_elem e;
		if (vq_used(q, &e)) {
			for (u32 i = 0; i < e.len && n < sizeof(got) - 1; i++)
				got[n++] = (char)rxbuf[i];
			set_desc(q, 0, rxbuf, sizeof(rxbuf), VIRTQ_DESC_F_WRITE, 1);
			vq_kick(q, 0);
		}
		handle_ctrl(in, &closed);
		if (pm_clock_ms(&clk) > 5000) {
			uart_puts("vconsole: stdin never closed\n");
			return 1;
		}
	}
	got[n] = 0;
	uart_puts("vconsole: stdin got ");
	uart_dec(n);
	uart_puts(" bytes: ");
	uart_puts(got);
	uart_puts("\n");
	vdev_reset(&v, "vconsole");
	return 0;
}
