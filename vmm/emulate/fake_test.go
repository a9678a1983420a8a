package emulate

import (
	"encoding/binary"
	"testing"

	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/kvm"
)

// fakeCPU is a recorded vCPU state. Translate goes through translate; the
// Set calls are counted so a test can see a failed Step changed nothing.
type fakeCPU struct {
	regs      kvm.Regs
	sregs     kvm.Sregs
	translate func(linear uint64) kvm.Translation
	sets      int
	fpu       kvm.FPU
}

func (f *fakeCPU) GetFPU() (kvm.FPU, error) { return f.fpu, nil }
func (f *fakeCPU) SetFPU(v kvm.FPU) error   { f.fpu = v; f.sets++; return nil }

func (f *fakeCPU) GetRegs() (kvm.Regs, error)   { return f.regs, nil }
func (f *fakeCPU) GetSregs() (kvm.Sregs, error) { return f.sregs, nil }
func (f *fakeCPU) SetRegs(r kvm.Regs) error     { f.regs = r; f.sets++; return nil }
func (f *fakeCPU) SetSregs(s kvm.Sregs) error   { f.sregs = s; f.sets++; return nil }
func (f *fakeCPU) Translate(linear uint64) (kvm.Translation, error) {
	t := f.translate(linear)
	t.LinearAddress = linear
	return t, nil
}

var _ CPU = (*kvm.VCPU)(nil)

// identity maps every linear address below size to the same physical one.
func identity(size uint64) func(uint64) kvm.Translation {
	return func(lin uint64) kvm.Translation {
		if lin >= size {
			return kvm.Translation{}
		}
		return kvm.Translation{PhysicalAddress: lin, Valid: 1, Writeable: 1}
	}
}

// Page-table entry bits (SDM vol. 3, 4.5).
const (
	ptePresent  = 1 << 0
	pteWritable = 1 << 1
	pteUser     = 1 << 2
	pteAddr     = 0x000F_FFFF_FFFF_F000
)

// pageTables is a 4-level page table in guest memory with a bump allocator
// for its table pages.
type pageTables struct {
	mem  *guestmem.Memory
	cr3  uint64
	next uint64
}

func newPageTables(mem *guestmem.Memory, at uint64) *pageTables {
	return &pageTables{mem: mem, cr3: at, next: at + pageSize}
}

// mapPage maps the 4 KiB page at lin to phys with the given leaf flags.
func (p *pageTables) mapPage(t testing.TB, lin, phys, flags uint64) {
	t.Helper()
	table := p.cr3
	for level := 3; level > 0; level-- {
		slot := guestmem.GuestAddr(table + (lin>>(12+9*level)&0x1FF)*8)
		e, err := p.mem.ReadUint64(slot)
		if err != nil {
			t.Fatal(err)
		}
		if e&ptePresent == 0 {
			e = p.next | ptePresent | pteWritable | pteUser
			p.next += pageSize
			if err := p.mem.WriteUint64(slot, e); err != nil {
				t.Fatal(err)
			}
		}
		table = e & pteAddr
	}
	if err := p.mem.WriteUint64(guestmem.GuestAddr(table+(lin>>12&0x1FF)*8), phys|flags|ptePresent); err != nil {
		t.Fatal(err)
	}
}

// translate walks the tables as KVM_TRANSLATE would, reporting Writeable
// only when every level allows writes.
func (p *pageTables) translate(lin uint64) kvm.Translation {
	table, writable := p.cr3, true
	for level := 3; level >= 0; level-- {
		e, err := p.mem.ReadUint64(guestmem.GuestAddr(table + (lin>>(12+9*level)&0x1FF)*8))
		if err != nil || e&ptePresent == 0 {
			return kvm.Translation{}
		}
		writable = writable && e&pteWritable != 0
		table = e & pteAddr
	}
	return kvm.Translation{PhysicalAddress: table | lin&(pageSize-1), Valid: 1, Writeable: b2u(writable)}
}

// writeLinear writes b at a linear address through cpu's translation.
func writeLinear(t testing.TB, mem *guestmem.Memory, cpu *fakeCPU, lin uint64, b []byte) {
	t.Helper()
	for len(b) > 0 {
		n := min(len(b), pageSize-int(lin%pageSize))
		tr := cpu.translate(lin)
		if tr.Valid == 0 {
			t.Fatalf("test setup: %#x is not mapped", lin)
		}
		if err := mem.WriteAt(b[:n], guestmem.GuestAddr(tr.PhysicalAddress)); err != nil {
			t.Fatal(err)
		}
		lin += uint64(n)
		b = b[n:]
	}
}

func readLinear(t testing.TB, mem *guestmem.Memory, cpu *fakeCPU, lin uint64, n int) []byte {
	t.Helper()
	out := make([]byte, 0, n)
	for len(out) < n {
		c := min(n-len(out), pageSize-int(lin%pageSize))
		tr := cpu.translate(lin)
		if tr.Valid == 0 {
			t.Fatalf("%#x is not mapped", lin)
		}
		b, err := mem.Slice(guestmem.GuestAddr(tr.PhysicalAddress), uint64(c))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
		lin += uint64(c)
	}
	return out
}

func quads(words ...uint64) []byte {
	b := make([]byte, 8*len(words))
	for i, w := range words {
		binary.LittleEndian.PutUint64(b[8*i:], w)
	}
	return b
}

// gdtEntry is Linux's GDT_ENTRY(flags, base, limit) from
// arch/x86/include/asm/desc_defs.h: flags are the descriptor's access byte
// in bits 0-7 and its G/D/L/AVL nibble in bits 12-15.
func gdtEntry(flags uint16, base, limit uint32) uint64 {
	return uint64(base&0xFF000000)<<(56-24) | uint64(flags&0xF0FF)<<40 |
		uint64(limit&0xF0000)<<(48-16) | uint64(base&0x00FFFFFF)<<16 | uint64(limit&0xFFFF)
}

// Linux 6.1's GDT (arch/x86/kernel/cpu/common.c, gdt_page) and selectors
// (arch/x86/include/asm/segment.h).
const (
	kernelCS = 0x10
	kernelDS = 0x18
	userDS   = 0x2b
	userCS   = 0x33
	tssSel   = 0x40
)

func linuxGDT() []byte {
	return quads(
		0,
		gdtEntry(0xc09b, 0, 0xfffff), // KERNEL32_CS
		gdtEntry(0xa09b, 0, 0xfffff), // KERNEL_CS
		gdtEntry(0xc093, 0, 0xfffff), // KERNEL_DS
		gdtEntry(0xc0fb, 0, 0xfffff), // DEFAULT_USER32_CS
		gdtEntry(0xc0f3, 0, 0xfffff), // DEFAULT_USER_DS
		gdtEntry(0xa0fb, 0, 0xfffff), // DEFAULT_USER_CS
		0,
		0, 0, // TSS, read from TR instead
	)
}

// The segment registers as KVM reports them for those selectors.
var (
	segKernelCS = kvm.Segment{Limit: 0xFFFFFFFF, Selector: kernelCS, Type: 0xB, Present: 1, S: 1, L: 1, G: 1}
	segKernelSS = kvm.Segment{Limit: 0xFFFFFFFF, Selector: kernelDS, Type: 0x3, Present: 1, DB: 1, S: 1, G: 1}
	segUserCS   = kvm.Segment{Limit: 0xFFFFFFFF, Selector: userCS, Type: 0xB, Present: 1, DPL: 3, S: 1, L: 1, G: 1}
	segUserSS   = kvm.Segment{Limit: 0xFFFFFFFF, Selector: userDS, Type: 0x3, Present: 1, DPL: 3, DB: 1, S: 1, G: 1}
	segNull     = kvm.Segment{Unusable: 1}
)

// gateBytes is a 64-bit IDT gate.
func gateBytes(offset uint64, sel uint16, ist, typ, dpl uint8, present bool) []byte {
	b := make([]byte, gateSize)
	binary.LittleEndian.PutUint16(b[0:], uint16(offset))
	binary.LittleEndian.PutUint16(b[2:], sel)
	b[4] = ist
	b[5] = typ | dpl<<5
	if present {
		b[5] |= 0x80
	}
	binary.LittleEndian.PutUint16(b[6:], uint16(offset>>16))
	binary.LittleEndian.PutUint32(b[8:], uint32(offset>>32))
	return b
}

// layout places a Linux-like kernel's tables, code and stacks at linear
// addresses.
type layout struct {
	gdt, idt, tss       uint64
	text, handler       uint64 // where the int3 is, and asm_exc_int3
	stack               uint64 // kernel RSP at the int3
	rsp0, ist1          uint64 // TSS stacks
	userText, userStack uint64
}

// identityLayout fits in 1 MiB of identity-mapped memory.
var identityLayout = layout{
	gdt: 0x1000, idt: 0x2000, tss: 0x3000,
	text: 0x10123, handler: 0x20000,
	stack: 0x8f58, rsp0: 0xa000, ist1: 0xc000,
	userText: 0x40000, userStack: 0x50ff8,
}

// kernelLayout uses Linux's own addresses: the cpu_entry_area GDT and IDT,
// kernel text, a vmalloc'd stack whose interrupt frame straddles two pages
// that are not physically adjacent.
var kernelLayout = layout{
	gdt: 0xfffffe0000001000, idt: 0xfffffe0000000000, tss: 0xfffffe0000003000,
	text: 0xffffffff8103abcd, handler: 0xffffffff81a01230,
	stack: 0xffffc90000010018, rsp0: 0xffffc90000020000, ist1: 0xffffc90000030008,
	userText: 0x401000, userStack: 0x7ffc0001000c,
}

// newLinux builds a vCPU stopped at an int3 in a Linux 6.1 kernel (CPL 0)
// or, with user set, in a user process, over l. With paged set, l is mapped
// by 4-level page tables, each page to a scattered physical page; otherwise
// memory is identity mapped.
func newLinux(t testing.TB, l layout, paged, user bool) (*fakeCPU, *guestmem.Memory) {
	t.Helper()
	mem := guestmem.NewTest(1 << 20)
	cpu := &fakeCPU{translate: identity(1 << 20)}
	var cr3 uint64
	if paged {
		pt := newPageTables(mem, 0x80000)
		phys := uint64(0xF0000) // handed out downwards, so neighbours are not adjacent
		for _, lin := range []uint64{l.gdt, l.idt, l.tss, l.text, l.handler, l.stack - pageSize, l.stack,
			l.rsp0 - pageSize, l.ist1 - pageSize, l.ist1, l.userText, l.userStack} {
			page := lin &^ (pageSize - 1)
			if pt.translate(page).Valid == 0 {
				pt.mapPage(t, page, phys, pteWritable)
				phys -= 2 * pageSize
			}
		}
		cpu.translate, cr3 = pt.translate, pt.cr3
	}
	writeLinear(t, mem, cpu, l.gdt, linuxGDT())
	writeLinear(t, mem, cpu, l.idt+vectorBP*gateSize, gateBytes(l.handler, kernelCS, 0, typeInterruptGate, 3, true))
	writeLinear(t, mem, cpu, l.tss+tssRSP0, quads(l.rsp0))
	writeLinear(t, mem, cpu, l.tss+tssIST1, quads(l.ist1))

	cpu.regs = kvm.Regs{RIP: l.text, RSP: l.stack, RFLAGS: 0x246, RAX: 0x1234, RBP: l.stack + 0x40}
	cpu.sregs = kvm.Sregs{
		CS: segKernelCS, SS: segKernelSS, DS: segNull, ES: segNull, FS: segNull, GS: segNull,
		TR:   kvm.Segment{Base: l.tss, Limit: 0x206f, Selector: tssSel, Type: typeTSS64Busy, Present: 1},
		LDT:  kvm.Segment{Unusable: 1},
		GDT:  kvm.DTable{Base: l.gdt, Limit: 16*8 - 1},
		IDT:  kvm.DTable{Base: l.idt, Limit: 256*gateSize - 1},
		CR0:  0x80050033,
		CR3:  cr3,
		CR4:  0x3606f0 &^ cr4LA57,
		EFER: 0xd01,
	}
	cpu.sregs.GS.Base = 0xffff888007a00000
	if user {
		cpu.regs.RIP, cpu.regs.RSP, cpu.regs.RFLAGS = l.userText, l.userStack, 0x10246 // RF too
		cpu.sregs.CS, cpu.sregs.SS, cpu.sregs.DS, cpu.sregs.ES = segUserCS, segUserSS, segUserSS, segUserSS
		cpu.sregs.GS.Base = 0x7f0000001000
	}
	writeLinear(t, mem, cpu, cpu.regs.RIP, []byte{0xCC})
	writeLinear(t, mem, cpu, l.handler, []byte{0x48, 0xCF})
	return cpu, mem
}
