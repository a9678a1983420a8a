/* hostfault: the guest end of e2e/hostfault_test.go, which shows how vmm
 * copes with a host that fails under the guest (a disk image unlinked,
 * truncated or failing with EIO) and with a guest that floods it. The
 * kernel command line names one role:
 *
 *   blk    drives the first virtio-blk disk (polled, VIRTIO_BLK_F_FLUSH
 *          negotiated) as console lines ask, one request a line, and
 *          answers each with one line:
 *            r N   read sector N         hostfault: r N status S fnv=0x...
 *                                        (the FNV-1a-32 of the sector, only when S is 0)
 *            w N   write sector N, byte i = i*7+N (mod 256)
 *                                        hostfault: w N status S
 *            f     flush                 hostfault: f status S
 *            q     end: the guest resets
 *          S is the request's status byte (0 OK, 1 IOERR), or "none" when
 *          the device never answers.
 *   uart   writes 64-byte lines "hostfault: flood ...\n" to COM1 as fast
 *          as the UART takes them.
 *   nettx  sends 1514-byte frames (EtherType 0x88b5) to 02:00:00:00:00:01
 *          on the first virtio-net device as fast as the device takes
 *          them, all QSIZE transmit buffers in flight.
 *   netrx  brings the virtio-net device up and posts no receive buffer,
 *          so whatever is sent to it waits in the host. A line "r" on the
 *          console posts QSIZE buffers and counts the frames that arrive
 *          until none has for 500 ms: "hostfault: netrx got N frames".
 *
 * The blk and net roles print "hostfault: features ok" once their device
 * is up. The blk role then prints "hostfault: blk capacity C sectors" and
 * "hostfault: blk ready"; the others "hostfault: <role> begin", then run until the
 * ACPI power button is pressed (vmm's SIGTERM), print "hostfault: <role>
 * end N <unit>" (uart: bytes written; nettx: frames the device took;
 * netrx: frames received) and power off through PM1a_CNT (\_S5).
 */
#include "vdrv.h"

#define GUEST "hostfault"

/* vmm's FADT PM1a blocks (the acpi and pwrbtn guests use the same). */
#define PM1A_STS 0x600
#define PM1A_EN 0x602
#define PM1A_CNT 0x604
#define PWRBTN (1u << 8)
#define SLP_S5 ((5u << 10) | (1u << 13)) /* SLP_TYP=5, SLP_EN */


#define BLK_F_FLUSH (1u << 9)
#define FRAME 1514
#define RX_IDLE_MS 500

static const u8 sink_mac[6] = {0x02, 0, 0, 0, 0, 0x01};

static u8 txbufs[QSIZE][NET_HDR + FRAME] __attribute__((aligned(16)));
static u8 rxbufs[QSIZE][NET_HDR + FRAME] __attribute__((aligned(16)));

static inline u16 inw(u16 port)
{
	u16 v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static int pressed(void) { return (inw(PM1A_STS) & PWRBTN) != 0; }

static void power_off(void)
{
	outw(PM1A_STS, PWRBTN); /* write 1 to clear */
	outw(PM1A_CNT, SLP_S5);
	for (;;)
		__asm__ volatile("cli; hlt");
}

static void end_line(const char *role, u64 n, const char *unit)
{
	uart_puts(GUEST ": ");
	uart_puts(role);
	uart_puts(" end ");
	uart_dec(n);
	uart_puts(" ");
	uart_puts(unit);
	uart_puts("\n");
}

/* --- blk --- */

/* read_line reads a console line into buf (NUL-terminated, without the
 * newline); a longer line is cut. */
static void read_line(char *buf, u32 size)
{
	u32 n = 0;
	for (;;) {
		char c = uart_getc();
		if (c == '\n' || c == '\r') {
			if (n == 0)
				continue; /* the rest of a CR LF */
			break;
		}
		if (n + 1 < size)
			buf[n++] = c;
	}
	buf[n] = 0;
}

static u64 parse_dec(const char *s)
{
	u64 v = 0;
	while (*s == ' ')
		s++;
	while (*s >= '0' && *s <= '9')
		v = v * 10 + (u64)(*s++ - '0');
	return v;
}

/* blk_answer prints "hostfault: <cmd> [N ]status S". */
static void blk_answer(char cmd, u64 sector, int with_sector, int status)
{
	uart_puts(GUEST ": ");
	uart_putc(cmd);
	if (with_sector) {
		uart_puts(" ");
		uart_dec(sector);
	}
	uart_puts(" status ");
	if (status < 0)
		uart_puts("none");
	else
		uart_dec((u64)status);
}

static int blk_request(struct vdev *v, u32 type, u64 sector, u32 len, int in)
{
	blk_chain(&vqs[0], type, sector, len, in);
	if (submit(v, &vqs[0], GUEST) < 0)
		return -1;
	return blk_status;
}

static void role_blk(void)
{
	struct vdev v;
	u32 dev = vdev_find(0, VIRTIO_ID_BLOCK);
	if (dev == 32 || !vdev_open(&v, dev)) {
		uart_puts(GUEST ": no block device\n");
		return;
	}
	if (!bring_up(&v, GUEST, BLK_F_FLUSH, 1))
		return;
	uart_puts(GUEST ": blk capacity ");
	uart_dec(blk_capacity(&v));
	uart_puts(" sectors\n" GUEST ": blk ready\n");
	for (;;) {
		char line[32];
		read_line(line, sizeof(line));
		u64 n = parse_dec(line + 1);
		int s;
		switch (line[0]) {
		case 'r':
			memset(blk_data, 0, sizeof(blk_data));
			s = blk_request(&v, BLK_T_IN, n, SECTOR, 1);
			blk_answer('r', n, 1, s);
			if (s == 0) {
				uart_puts(" fnv=");
				uart_hex(fnv1a(blk_data, SECTOR));
			}
			break;
		case 'w':
			for (u32 i = 0; i < SECTOR; i++)
				blk_data[i] = (u8)(i * 7 + n);
			blk_answer('w', n, 1, blk_request(&v, BLK_T_OUT, n, SECTOR, 0));
			break;
		case 'f':
			blk_answer('f', 0, 0, blk_request(&v, BLK_T_FLUSH, 0, 0, 0));
			break;
		case 'q':
			vdev_reset(&v, GUEST);
			return;
		default:
			uart_puts(GUEST ": unknown command");
		}
		uart_puts("\n");
	}
}

/* --- uart --- */

static void role_uart(void)
{
	/* 64 bytes with the newline, which makes vmm write the line out. */
	static const char line[] = GUEST ": flood 0123456789abcdefghijklmnopqrstuvwxyz0123456789\n";
	_Static_assert(sizeof(line) - 1 == 64, "flood lines are 64 bytes");
	u64 bytes = 0;
	uart_puts(GUEST ": uart begin\n");
	while (!pressed()) {
		uart_puts(line);
		bytes += sizeof(line) - 1;
	}
	end_line("uart", bytes, "bytes");
}

/* --- network --- */

/* net_up brings the first virtio-net device up (MAC only, receiveq 0,
 * transmitq 1) and reads its MAC; 0 if there is none. */
static int net_up(struct vdev *v, u8 *mac)
{
	u32 dev = vdev_find(0, VIRTIO_ID_NET);
	if (dev == 32 || !vdev_open(v, dev)) {
		uart_puts(GUEST ": no network device\n");
		return 0;
	}
	if (!bring_up(v, GUEST, NET_F_MAC, 2))
		return 0;
	for (int i = 0; i < 6; i++)
		mac[i] = rd8(v->device, (u32)i);
	return 1;
}

static void role_nettx(void)
{
	struct vdev v;
	u8 mac[6];
	if (!net_up(&v, mac))
		return;
	struct vq *q = &vqs[TXQ];
	for (u16 i = 0; i < QSIZE; i++) {
		u8 *f = txbufs[i] + NET_HDR;
		memcpy(f, sink_mac, 6);
		memcpy(f + 6, mac, 6);
		f[12] = ETH_TYPE_TEST >> 8;
		f[13] = ETH_TYPE_TEST & 0xff;
		set_desc(q, i, txbufs[i], NET_HDR + FRAME, 0, 1);
		vq_publish(q, i);
	}
	uart_puts(GUEST ": nettx begin\n");
	vq_notify(q);
	u64 sent = 0;
	while (!pressed()) {
		struct virtq_used_elem e;
		int again = 0;
		while (vq_used(q, &e)) {
			sent++;
			vq_publish(q, (u16)e.id);
			again = 1;
		}
		if (again)
			vq_notify(q);
	}
	end_line("nettx", sent, "frames");
}

/* rx_burst posts every receive buffer and counts the frames that come
 * until none has for RX_IDLE_MS. */
static u64 rx_burst(void)
{
	struct vq *q = &vqs[RXQ];
	for (u16 i = 0; i < QSIZE; i++) {
		set_desc(q, i, rxbufs[i], sizeof(rxbufs[i]), VIRTQ_DESC_F_WRITE, 1);
		vq_publish(q, i);
	}
	vq_notify(q);
	u64 got = 0;
	struct pm_clock idle;
	pm_clock_start(&idle);
	while (pm_clock_ms(&idle) < RX_IDLE_MS) {
		struct virtq_used_elem e;
		int again = 0;
		while (vq_used(q, &e)) {
			got++;
			vq_publish(q, (u16)(e.id % QSIZE));
			again = 1;
		}
		if (again) {
			vq_notify(q);
			pm_clock_start(&idle);
		}
	}
	return got;
}

static void role_netrx(void)
{
	struct vdev v;
	u8 mac[6];
	if (!net_up(&v, mac))
		return;
	uart_puts(GUEST ": netrx begin\n");
	u64 total = 0;
	while (!pressed()) {
		if (uart_poll() != 'r')
			continue;
		u64 got = rx_burst();
		total += got;
		uart_puts(GUEST ": netrx got ");
		uart_dec(got);
		uart_puts(" frames\n");
	}
	end_line("netrx", total, "frames");
}

int main(const u8 *boot_params)
{
	outw(PM1A_EN, PWRBTN);
	if (cmdline_has((const char *)(u64)bp32(boot_params, BP_CMD_LINE_PTR), "blk")) {
		role_blk();
		return 0;
	}
	if (cmdline_has((const char *)(u64)bp32(boot_params, BP_CMD_LINE_PTR), "uart"))
		role_uart();
	else if (cmdline_has((const char *)(u64)bp32(boot_params, BP_CMD_LINE_PTR), "nettx"))
		role_nettx();
	else if (cmdline_has((const char *)(u64)bp32(boot_params, BP_CMD_LINE_PTR), "netrx"))
		role_netrx();
	else {
		uart_puts(GUEST ": no role on the command line (blk, uart, nettx, netrx)\n");
		return 1;
	}
	power_off();
	return 0;
}
