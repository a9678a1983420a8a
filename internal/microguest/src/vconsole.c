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

#define CONSOLE_F_MULTIPORT (1u << 1)
#define CFG_MAX_NR_PORTS 4

/* struct virtio_console_control events (§5.3.6.2). */
#define DEVICE_READY 0
#define DEVICE_ADD 1
#define PORT_READY 3
#define PORT_OPEN 6
#define PORT_NAME 7

#define CTRL_RX 2
#define CTRL_TX 3
#define MAX_PORTS 3
#define NAME_MAX 32
#define CTRL_BUFS 4
#define CTRL_BUF 64

struct ctrl {
	u32 id;
	u16 event;
	u16 value;
} __attribute__((packed));

static u8 ctrl_rx[CTRL_BUFS][CTRL_BUF] __attribute__((aligned(16)));
static struct ctrl ctrl_tx __attribute__((aligned(16)));
static char names[MAX_PORTS][NAME_MAX];
static int host_open[MAX_PORTS];
static int added[MAX_PORTS];
static u8 txbuf[512] __attribute__((aligned(16)));
static u8 rxbuf[256] __attribute__((aligned(16)));
static struct vdev v;

static int rx_queue(u32 port) { return port == 0 ? 0 : (int)(2 * port + 2); }
static int tx_queue(u32 port) { return port == 0 ? 1 : (int)(2 * port + 3); }

static int send_ctrl(u32 id, u16 event, u16 value)
{
	struct vq *q = &vqs[CTRL_TX];
	ctrl_tx.id = id;
	ctrl_tx.event = event;
	ctrl_tx.value = value;
	set_desc(q, 0, &ctrl_tx, sizeof(ctrl_tx), 0, 1);
	return submit(&v, q, "vconsole") >= 0;
}

static void post_ctrl(u16 i)
{
	set_desc(&vqs[CTRL_RX], i, ctrl_rx[i], CTRL_BUF, VIRTQ_DESC_F_WRITE, 1);
	vq_kick(&vqs[CTRL_RX], i);
}

/* handle_ctrl processes every control message the device has returned;
 * it reports PORT_OPEN 0 for port stdin_port through *closed. */
static void handle_ctrl(u32 stdin_port, int *closed)
{
	struct virtq_used_elem e;
	while (vq_used(&vqs[CTRL_RX], &e)) {
		if (e.id >= CTRL_BUFS)
			continue;
		struct ctrl *c = (struct ctrl *)ctrl_rx[e.id];
		u32 id = c->id;
		if (e.len >= sizeof(*c) && id < MAX_PORTS) {
			switch (c->event) {
			case DEVICE_ADD:
				added[id] = 1;
				send_ctrl(id, PORT_READY, 1);
				break;
			case PORT_NAME: {
				u32 n = e.len - sizeof(*c);
				if (n >= NAME_MAX)
					n = NAME_MAX - 1;
				memcpy(names[id], ctrl_rx[e.id] + sizeof(*c), n);
				names[id][n] = 0;
				break;
			}
			case PORT_OPEN:
				host_open[id] = c->value;
				if (closed && id == stdin_port && !c->value)
					*closed = 1;
				break;
			}
		}
		post_ctrl((u16)e.id);
	}
}

static int streq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

static u32 port_named(const char *name)
{
	for (u32 i = 0; i < MAX_PORTS; i++)
		if (streq(names[i], name))
			return i;
	return MAX_PORTS;
}

static int write_port(u32 port, const void *buf, u32 len)
{
	struct vq *q = &vqs[tx_queue(port)];
	memcpy(txbuf, buf, len);
	set_desc(q, 0, txbuf, len, 0, 1);
	return submit(&v, q, "vconsole") >= 0;
}

int main(const u8 *boot_params)
{
	(void)boot_params;
	u32 dev = vdev_find(0, 3);
	if (dev == 32 || !vdev_open(&v, dev)) {
		uart_puts("vconsole: no console device\n");
		return 1;
	}
	u32 nports = rd32(v.device, CFG_MAX_NR_PORTS);
	if (nports != MAX_PORTS) {
		uart_puts("vconsole: max_nr_ports ");
		uart_dec(nports);
		uart_puts(", want 3\n");
		return 1;
	}
	if (!bring_up(&v, "vconsole", CONSOLE_F_MULTIPORT, (int)(2 * (nports + 1))))
		return 1;
	for (u16 i = 0; i < CTRL_BUFS; i++)
		post_ctrl(i);
	send_ctrl(0, DEVICE_READY, 1);

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
	if (out == MAX_PORTS || err == MAX_PORTS || in == MAX_PORTS) {
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
