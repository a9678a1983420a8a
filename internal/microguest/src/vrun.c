/* vrun: the guest end of `vmm run`'s channel, as guestinit uses it, on
 * the ports vmm run creates (vmm.stdout, vmm.stderr, vmm.control, and
 * vmm.stdin with -i). It writes a line and the bytes 0..255 on stdout and
 * a line on stderr. With a stdin port it copies stdin to stdout until the
 * host closes it and exits with the byte count mod 256; without one it
 * waits for a control message and exits with 128+N on "signal N". It
 * sends "exit STATUS" on the control port and powers off at once, without
 * waiting for the device to take the line: the VMM must still deliver it.
 *
 * Console (never on the stdio ports):
 *   vrun: ready
 *   vrun: control winsize R C     (for each window-size message)
 *   vrun: exit STATUS
 */
#include "vdrv.h"
#include "vcons.h"

#define PM1A_CNT 0x604 /* vmm's FADT PM1a_CNT_BLK (the acpi guest checks it) */

static u8 inbuf[256] __attribute__((aligned(16)));
static u8 ctlbuf[64] __attribute__((aligned(16)));
static char exitline[16] __attribute__((aligned(16)));

/* post posts buf as port's one receive buffer. */
static void post(u32 port, u8 *buf, u32 len)
{
	struct vq *q = &vqs[rx_queue(port)];
	set_desc(q, 0, buf, len, VIRTQ_DESC_F_WRITE, 1);
	vq_kick(q, 0);
}

static u32 parse_num(const char **s)
{
	u32 n = 0;
	while (**s >= '0' && **s <= '9')
		n = n * 10 + (u32)(*(*s)++ - '0');
	return n;
}

static int has_prefix(const char *s, const char *p)
{
	while (*p)
		if (*s++ != *p++)
			return 0;
	return 1;
}

int main(const u8 *boot_params)
{
	(void)boot_params;
	u32 nports = vcons_up("vrun", 3, VC_PORTS);
	if (!nports)
		return 1;

	struct pm_clock clk;
	pm_clock_start(&clk);
	u32 out, err, ctl, in;
	for (;;) {
		handle_ctrl(VC_PORTS, 0);
		out = port_named("vmm.stdout"), err = port_named("vmm.stderr");
		ctl = port_named("vmm.control"), in = port_named("vmm.stdin");
		int ready = out != VC_PORTS && err != VC_PORTS && ctl != VC_PORTS && (nports == 3 || in != VC_PORTS);
		if (ready)
			break;
		if (pm_clock_ms(&clk) > 5000) {
			uart_puts("vrun: handshake incomplete\n");
			return 1;
		}
	}
	send_ctrl(out, PORT_OPEN, 1);
	send_ctrl(err, PORT_OPEN, 1);
	post(ctl, ctlbuf, sizeof(ctlbuf) - 1);
	send_ctrl(ctl, PORT_OPEN, 1);

	static const char hello_out[] = "hello on stdout\n", hello_err[] = "hello on stderr\n";
	u8 pattern[256];
	for (u32 i = 0; i < 256; i++)
		pattern[i] = (u8)i;
	if (!write_port(out, hello_out, sizeof(hello_out) - 1) || !write_port(out, pattern, sizeof(pattern)) ||
	    !write_port(err, hello_err, sizeof(hello_err) - 1))
		return 1;
	uart_puts("vrun: ready\n");

	u32 status = 0;
	pm_clock_start(&clk);
	if (in != VC_PORTS) {
		/* Copy stdin to stdout until the host closes stdin. */
		struct vq *q = &vqs[rx_queue(in)];
		u32 n = 0;
		/* The host end's state comes before the port's name, so a host
		 * that had nothing to send has closed it already. */
		int closed = !host_open[in];
		post(in, inbuf, sizeof(inbuf));
		send_ctrl(in, PORT_OPEN, 1);
		while (!closed || *(volatile u16 *)&q->used.idx != q->used_idx) {
			struct virtq_used_elem e;
			if (vq_used(q, &e)) {
				if (e.len && !write_port(out, inbuf, e.len > sizeof(inbuf) ? sizeof(inbuf) : e.len))
					return 1;
				n += e.len;
				post(in, inbuf, sizeof(inbuf));
			}
			handle_ctrl(in, &closed);
			if (pm_clock_ms(&clk) > 10000) {
				uart_puts("vrun: stdin never closed\n");
				return 1;
			}
		}
		status = n % 256;
	} else {
		/* Wait for "signal N"; report window sizes on the way. */
		struct vq *q = &vqs[rx_queue(ctl)];
		for (;;) {
			struct virtq_used_elem e;
			handle_ctrl(VC_PORTS, 0);
			if (vq_used(q, &e)) {
				ctlbuf[e.len < sizeof(ctlbuf) ? e.len : sizeof(ctlbuf) - 1] = 0;
				const char *s = (const char *)ctlbuf;
				if (has_prefix(s, "signal ")) {
					s += 7;
					status = 128 + parse_num(&s);
					break;
				}
				uart_puts("vrun: control ");
				uart_puts((const char *)ctlbuf);
				post(ctl, ctlbuf, sizeof(ctlbuf) - 1);
			}
			if (pm_clock_ms(&clk) > 10000) {
				uart_puts("vrun: no signal came\n");
				return 1;
			}
		}
	}

	/* "exit STATUS\n", queued and kicked but not waited for. */
	char num[4];
	int k = 0;
	do
		num[k++] = (char)('0' + status % 10);
	while ((status /= 10) && k < 3);
	u32 len = 0;
	for (const char *p = "exit "; *p; p++)
		exitline[len++] = *p;
	while (k)
		exitline[len++] = num[--k];
	exitline[len++] = '\n';
	struct vq *q = &vqs[tx_queue(ctl)];
	set_desc(q, 0, exitline, len, 0, 1);
	vq_kick(q, 0);
	/* The device may read the line any time now: print, don't touch it. */
	uart_puts("vrun: ");
	for (u32 i = 0; i < len; i++)
		uart_putc(exitline[i]);
	outw(PM1A_CNT, (5 << 10) | (1 << 13)); /* SLP_TYP=5 (\_S5), SLP_EN */
	return 1;
}
