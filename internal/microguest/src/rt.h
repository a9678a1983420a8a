/*
 * Runtime shared by the micro-guests: polled 8250 UART on COM1, port I/O and
 * reset through the i8042. Plain integer instructions only, because the host's
 * software hypervisor cannot run SSE state saves, CMPXCHG16B, int3 or iretq.
 */
#ifndef MICROGUEST_RT_H
#define MICROGUEST_RT_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long u64;

/* boot_params (zero page) offsets, from Documentation/x86/zero-page.rst. */
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_RAMDISK_IMAGE 0x218
#define BP_RAMDISK_SIZE 0x21c
#define BP_CMD_LINE_PTR 0x228
#define BP_E820_TABLE 0x2d0

struct e820_entry {
	u64 addr;
	u64 size;
	u32 type;
} __attribute__((packed));

static inline void outb(u16 port, u8 v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline u8 inb(u16 port)
{
	u8 v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void outw(u16 port, u16 v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(u16 port, u32 v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline u32 inl(u16 port)
{
	u32 v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/* A 64-bit IDT gate (Intel SDM vol. 3, 6.14.1). */
struct gate {
	u16 offset_lo;
	u16 selector;
	u8 ist;
	u8 type_attr;
	u16 offset_mid;
	u32 offset_hi;
	u32 reserved;
} __attribute__((packed));

/* The operand of LGDT/LIDT. */
struct table_reg {
	u16 limit;
	u64 base;
} __attribute__((packed));

static inline u8 bp8(const u8 *bp, u32 off) { return bp[off]; }
static inline u32 bp32(const u8 *bp, u32 off) { return *(const u32 *)(bp + off); }

void uart_putc(char c);
void uart_puts(const char *s);
void uart_hex(u64 v); /* "0x" and the shortest hex digits */
void uart_dec(u64 v);
char uart_getc(void);
int uart_poll(void); /* the next input byte, or -1 when there is none yet */
void reset(void) __attribute__((noreturn));
int cmdline_has(const char *cl, const char *word); /* word is one of cl's space-separated words */
u32 fnv1a(const u8 *p, u64 n); /* FNV-1a-32: cheap per byte for an emulated CPU */

void *memset(void *d, int c, unsigned long n);
void *memcpy(void *d, const void *s, unsigned long n);

int main(const u8 *boot_params);

#endif
