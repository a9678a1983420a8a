/* vcons.h: the driver side of a multiport virtio console (§5.3.6) for
 * micro-guests, as Linux's virtio_console drives it: control queue
 * messages (PORT_READY for each DEVICE_ADD, names, host opens) and writes
 * to a port. Include after vdrv.h; it uses vdrv's queues and one device, v.
 */
#ifndef MICROGUEST_VCONS_H
#define MICROGUEST_VCONS_H

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
#define VC_PORTS 4 /* the most ports a guest here drives */
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
static char names[VC_PORTS][NAME_MAX];
static int host_open[VC_PORTS];
static int added[VC_PORTS];
static u8 txbuf[512] __attribute__((aligned(16)));
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
	return submit(&v, q, "vcons") >= 0;
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
		if (e.len >= sizeof(*c) && id < VC_PORTS) {
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

/* port_named returns the port the host named name, or VC_PORTS. */
static u32 port_named(const char *name)
{
	for (u32 i = 0; i < VC_PORTS; i++)
		if (names[i][0] && streq(names[i], name))
			return i;
	return VC_PORTS;
}

static int write_port(u32 port, const void *buf, u32 len)
{
	struct vq *q = &vqs[tx_queue(port)];
	memcpy(txbuf, buf, len);
	set_desc(q, 0, txbuf, len, 0, 1);
	return submit(&v, q, "vcons") >= 0;
}

/* vcons_up finds the console device, checks that it has min to max ports,
 * brings it up with MULTIPORT, posts the control buffers and sends
 * DEVICE_READY, as Linux's driver starts. It returns the number of ports,
 * or 0 after saying why on the UART. */
static u32 vcons_up(const char *name, u32 min, u32 max)
{
	u32 dev = vdev_find(0, 3);
	if (dev == 32 || !vdev_open(&v, dev)) {
		puts2(name, ": no console device\n");
		return 0;
	}
	u32 nports = rd32(v.device, CFG_MAX_NR_PORTS);
	if (nports < min || nports > max) {
		puts2(name, ": max_nr_ports ");
		uart_dec(nports);
		uart_puts(", want ");
		uart_dec(min);
		uart_puts(" to ");
		uart_dec(max);
		uart_puts("\n");
		return 0;
	}
	if (!bring_up(&v, name, CONSOLE_F_MULTIPORT, (int)(2 * (nports + 1))))
		return 0;
	for (u16 i = 0; i < CTRL_BUFS; i++)
		post_ctrl(i);
	send_ctrl(0, DEVICE_READY, 1);
	return nports;
}

#endif
