/* virtioirq: takes the block device's used-buffer interrupts, first as an
 * MSI-X message, then as INTx through the IOAPIC, as a driver does when
 * MSI-X is off. Handlers never return (iretq is beyond this host's
 * emulator): each runs on its own stack and carries on with the next step.
 *
 *   1. MSI-X: table entry 0 = LAPIC 0, vector 0x41, masked; MSI-X enabled;
 *      queue 0 on vector 0. A read completes while the vector is masked, so
 *      its pending bit (PBA) must be set; unmasking sends it, and the
 *      handler runs once interrupts are enabled.
 *   2. INTx: MSI-X off, device reset and brought up again with no vector;
 *      the IOAPIC input named by the Interrupt Line register goes to vector
 *      0x42, level-triggered. A read completes; the handler reads the ISR
 *      and the STATUS Interrupt Status bit around it: the read deasserts
 *      INTA# (see on_intx).
 *
 * Output:
 *   virtio-irq: features ok
 *   virtio-irq: msi-x masked, pending 1
 *   virtio-irq: msi-x vector 0x41, pending 0
 *   virtio-irq: features ok
 *   virtio-irq: intx gsi <n> vector 0x42 isr 0x1
 *   virtio-irq: intx status 1 before the isr read, 0 after
 */
#include "vdrv.h"

#define LAPIC 0xfee00000ul
#define LAPIC_EOI 0xb0
#define LAPIC_SVR 0xf0
#define LAPIC_SVR_ENABLE 0x100
#define IOAPIC 0xfec00000ul
#define IOAPIC_REGSEL 0x00
#define IOAPIC_WIN 0x10
#define IOAPIC_REDTBL 0x10
#define REDIR_LEVEL (1u << 15)
#define REDIR_ACTIVE_LOW (1u << 13)
#define PCI_STATUS_INTX 0x08

#define MSIX_CTL 2
#define MSIX_CTL_ENABLE 0x8000
#define MSIX_TABLE 4
#define MSIX_PBA 8
#define MSIX_MASKED 1

#define VEC_MSIX 0x41
#define VEC_INTX 0x42
#define IDT_ENTRIES 0x50

static struct gate idt[IDT_ENTRIES] __attribute__((aligned(16)));
static struct vdev v;
static volatile u32 *msix_table;
static volatile u64 *msix_pba;

void msix_entry(void);
void intx_entry(void);
void unexpected_entry(void);
void on_msix(void) __attribute__((noreturn, used));
void on_intx(void) __attribute__((noreturn, used));
void on_unexpected(void) __attribute__((noreturn, used));

/* Each entry switches to the interrupt stack and calls its C handler,
 * which never returns. */
__asm__(".text\n"
	"msix_entry:\n"
	"	leaq irq_stack_top(%rip), %rsp\n"
	"	call on_msix\n"
	"intx_entry:\n"
	"	leaq irq_stack_top(%rip), %rsp\n"
	"	call on_intx\n"
	"unexpected_entry:\n"
	"	leaq irq_stack_top(%rip), %rsp\n"
	"	call on_unexpected\n"
	".section .data.irqstack, \"aw\", @progbits\n"
	".balign 16\n"
	"	.space 8192\n"
	"irq_stack_top:\n"
	".text\n");

static void lapic_write(u32 reg, u32 val) { *(volatile u32 *)(LAPIC + reg) = val; }

static void ioapic_write(u32 reg, u32 val)
{
	*(volatile u32 *)(IOAPIC + IOAPIC_REGSEL) = reg;
	*(volatile u32 *)(IOAPIC + IOAPIC_WIN) = val;
}

static void set_gate(int vec, void (*fn)(void))
{
	u64 a = (u64)fn;
	u16 cs;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	idt[vec].offset_lo = (u16)a;
	idt[vec].selector = cs;
	idt[vec].ist = 0;
	idt[vec].type_attr = 0x8e; /* present, DPL 0, 64-bit interrupt gate */
	idt[vec].offset_mid = (u16)(a >> 16);
	idt[vec].offset_hi = (u32)(a >> 32);
	idt[vec].reserved = 0;
}

/* read_and_poll makes a read of sector 0 available and polls until the device
 * returns it; 0 if it never does. Interrupts stay off meanwhile. */
static int read_and_poll(void)
{
	struct vq *q = &vqs[0];
	struct virtq_used_elem e;
	blk_chain(q, BLK_T_IN, 0, SECTOR, 1);
	vq_kick(q, 0);
	for (u32 n = 0; n < POLL_LIMIT; n++)
		if (vq_used(q, &e))
			return blk_status == 0;
	uart_puts("virtio-irq: read never completes\n");
	return 0;
}

/* wait_interrupt opens an interrupt window over and over for up to 5 s; a
 * handler never returns here, so falling out means none came. (No hlt:
 * nothing else would wake it if the interrupt were lost.) */
static void wait_interrupt(const char *what)
{
	struct pm_clock c;
	pm_clock_start(&c);
	while (pm_clock_ms(&c) < 5000)
		__asm__ volatile("sti; nop; nop; cli");
	uart_puts("virtio-irq: no interrupt for ");
	uart_puts(what);
	uart_puts("\n");
	reset();
}

static void finish(void) __attribute__((noreturn));
static void finish(void)
{
	vdev_reset(&v, "virtio-irq");
	reset();
}

void on_unexpected(void)
{
	uart_puts("virtio-irq: unexpected interrupt or exception\n");
	reset();
}

/* on_intx reads the ISR, which must deassert INTA#: the function's STATUS
 * Interrupt Status bit says whether its INTx is pending, set before the
 * read and clear after. (The local APIC and IOAPIC state is no witness on
 * this host: its software hypervisor injects the vector without moving it
 * from the APIC's IRR to its ISR, so the EOI never reaches the IOAPIC.) */
void on_intx(void)
{
	u32 before = (cfg_read16(v.dev, PCI_STATUS) & PCI_STATUS_INTX) != 0;
	u8 isr = rd8(v.isr, 0);
	u32 after = (cfg_read16(v.dev, PCI_STATUS) & PCI_STATUS_INTX) != 0;
	lapic_write(LAPIC_EOI, 0);
	uart_puts("virtio-irq: intx gsi ");
	uart_dec(cfg_read8(v.dev, PCI_INT_LINE));
	uart_puts(" vector 0x42 isr ");
	uart_hex(isr);
	uart_puts("\n");
	uart_puts("virtio-irq: intx status ");
	uart_dec(before);
	uart_puts(" before the isr read, ");
	uart_dec(after);
	uart_puts(" after\n");
	finish();
}

static void phase_intx(void) __attribute__((noreturn));
static void phase_intx(void)
{
	u32 pos = vdev_find_cap(v.dev, PCI_CAP_MSIX);
	cfg_write16(v.dev, pos + MSIX_CTL, cfg_read16(v.dev, pos + MSIX_CTL) & ~MSIX_CTL_ENABLE);
	u32 gsi = cfg_read8(v.dev, PCI_INT_LINE);
	if (gsi < 16 || gsi > 23) {
		uart_puts("virtio-irq: interrupt line ");
		uart_dec(gsi);
		uart_puts(" is not a PCI GSI\n");
		finish();
	}
	ioapic_write(IOAPIC_REDTBL + 2 * gsi + 1, 0); /* destination: APIC 0 */
	ioapic_write(IOAPIC_REDTBL + 2 * gsi, VEC_INTX | REDIR_LEVEL | REDIR_ACTIVE_LOW);
	if (!bring_up_vec(&v, "virtio-irq", 0, 1, NO_VECTOR) || !read_and_poll())
		finish();
	wait_interrupt("intx");
	finish();
}

void on_msix(void)
{
	lapic_write(LAPIC_EOI, 0);
	uart_puts("virtio-irq: msi-x vector 0x41, pending ");
	uart_dec(msix_pba[0] & 1);
	uart_puts("\n");
	phase_intx();
}

int main(const u8 *boot_params)
{
	(void)boot_params;
	u32 dev = vdev_find(0, VIRTIO_ID_BLOCK);
	if (dev == 32 || !vdev_open(&v, dev)) {
		uart_puts("virtio-irq: no block device\n");
		return 1;
	}
	for (int i = 0; i < IDT_ENTRIES; i++)
		set_gate(i, unexpected_entry);
	set_gate(VEC_MSIX, msix_entry);
	set_gate(VEC_INTX, intx_entry);
	struct table_reg idtr = {sizeof(idt) - 1, (u64)idt};
	__asm__ volatile("lidt %0" : : "m"(idtr));
	lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | 0xff);

	u32 pos = vdev_find_cap(dev, PCI_CAP_MSIX);
	if (!pos) {
		uart_puts("virtio-irq: no MSI-X capability\n");
		return 1;
	}
	u32 table = cfg_read32(dev, pos + MSIX_TABLE), pba = cfg_read32(dev, pos + MSIX_PBA);
	msix_table = (volatile u32 *)(u64)((cfg_read32(dev, PCI_BAR0 + 4 * (table & 7)) & ~0xfu) + (table & ~7u));
	msix_pba = (volatile u64 *)(u64)((cfg_read32(dev, PCI_BAR0 + 4 * (pba & 7)) & ~0xfu) + (pba & ~7u));
	msix_table[0] = (u32)LAPIC; /* destination APIC ID 0, physical */
	msix_table[1] = 0;
	msix_table[2] = VEC_MSIX; /* fixed delivery, edge */
	msix_table[3] = MSIX_MASKED;
	cfg_write16(dev, pos + MSIX_CTL, cfg_read16(dev, pos + MSIX_CTL) | MSIX_CTL_ENABLE);

	if (!bring_up_vec(&v, "virtio-irq", 0, 1, 0) || !read_and_poll())
		finish();
	uart_puts("virtio-irq: msi-x masked, pending ");
	uart_dec(msix_pba[0] & 1);
	uart_puts("\n");
	msix_table[3] = 0; /* unmask: the pending message goes out */
	wait_interrupt("msi-x");
	return 1;
}
