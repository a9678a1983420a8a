package emulate

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/kvm"
)

// FuzzStep feeds arbitrary instruction bytes, IDT gate, GDT, TSS, stack,
// registers and translations to Step. It must never panic, and a failed
// Step must leave the vCPU and memory as they were.
func FuzzStep(f *testing.F) {
	l := identityLayout
	gdt := linuxGDT()
	gate := gateBytes(l.handler, kernelCS, 0, typeInterruptGate, 3, true)
	tss := make([]byte, 0x68)
	binary.LittleEndian.PutUint64(tss[tssRSP0:], l.rsp0)
	binary.LittleEndian.PutUint64(tss[tssIST1:], l.ist1)
	frameUser := quads(l.userText, userCS, 0x246, l.userStack, userDS)
	frameKernel := quads(l.text, kernelCS, 0x246, l.stack, 0)
	f.Add([]byte{0xCC}, gate, gdt, tss, frameKernel, uint8(0), uint64(0x8f58), uint64(0x246), uint64(0))
	f.Add([]byte{0xCC}, gate, gdt, tss, frameKernel, uint8(3), uint64(0x8f58), uint64(0x246), uint64(0))
	f.Add([]byte{0x48, 0xCF}, gate, gdt, tss, frameUser, uint8(0), uint64(0x8f58), uint64(0x246), uint64(0))
	f.Add([]byte{0x48, 0xCF}, gate, gdt, tss, frameKernel, uint8(0), uint64(0xfff8), uint64(0x246), uint64(1<<40))
	f.Add([]byte{0x0F, 0x01, 0xCA}, gate, gdt, tss, frameKernel, uint8(0), uint64(0x8f58), uint64(0x40246), uint64(0))
	f.Add([]byte{0x0F, 0x01, 0xCB}, gate, gdt, tss, frameKernel, uint8(0x13), uint64(0x8f58), uint64(0x246), uint64(0))

	f.Fuzz(func(t *testing.T, code, gate, gdt, tss, stack []byte, mode uint8, rsp, rflags, physOff uint64) {
		const size = 64 << 10
		mem := guestmem.NewTest(size)
		put := func(at uint64, b []byte, max int) {
			if len(b) > max {
				b = b[:max]
			}
			if err := mem.WriteAt(b, guestmem.GuestAddr(at)); err != nil {
				t.Fatal(err)
			}
		}
		const gdtAt, idtAt, tssAt, rip = 0x1000, 0x2000, 0x3000, 0x4ffe // the code straddles a page
		put(gdtAt, gdt, pageSize)
		put(idtAt+vectorBP*gateSize, gate, gateSize)
		put(tssAt, tss, pageSize)
		put(rip, code, 16)
		put(0x8000, stack, 0x100)

		cpu := &fakeCPU{translate: fuzzTranslate(size, physOff)}
		cpl := uint16(mode & 3)
		cpu.regs = kvm.Regs{RIP: rip, RSP: rsp, RFLAGS: rflags}
		cpu.sregs = kvm.Sregs{
			CS: segKernelCS, SS: segKernelSS,
			TR:   kvm.Segment{Base: tssAt, Limit: uint32(len(tss)), Selector: tssSel, Type: typeTSS64Busy, Present: 1},
			LDT:  kvm.Segment{Base: gdtAt, Limit: uint32(len(gdt)), Present: mode >> 5 & 1},
			GDT:  kvm.DTable{Base: gdtAt, Limit: uint16(len(gdt))},
			IDT:  kvm.DTable{Base: idtAt, Limit: uint16(len(gate)) + vectorBP*gateSize},
			CR0:  0x80050033,
			CR4:  uint64(mode>>6&1) * cr4LA57,
			EFER: 0xd01 &^ (uint64(mode>>2&1) * eferLMA),
		}
		cpu.sregs.CS.Selector = cpu.sregs.CS.Selector&^3 | cpl
		cpu.sregs.CS.L = 1 - mode>>3&1
		cpu.sregs.SS.Selector = cpu.sregs.SS.Selector&^3 | cpl
		cpu.sregs.CS.Base = uint64(mode>>4&1) << 63
		ram := snapshot(t, mem)

		res, err := Step(cpu, mem)
		if err != nil && (res.Handled || cpu.sets != 0 || !bytes.Equal(snapshot(t, mem), ram)) {
			t.Fatalf("Step failed (%v) but reported %+v and made %d Set calls", err, res, cpu.sets)
		}
		if res.Handled && cpu.sets == 0 {
			t.Fatalf("Step handled %s without setting registers", res.Mnemonic)
		}
	})
}

// fuzzTranslate maps linear addresses below size to physOff past them,
// wrapping, so fuzzed offsets reach outside RAM and around 2^64.
func fuzzTranslate(size, physOff uint64) func(uint64) kvm.Translation {
	return func(lin uint64) kvm.Translation {
		if lin >= size {
			return kvm.Translation{}
		}
		return kvm.Translation{PhysicalAddress: lin + physOff, Valid: 1, Writeable: 1 - uint8(physOff&1)}
	}
}
