package emulate

import (
	"bytes"
	"errors"
	"testing"

	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/kvm"
)

// TestStep_Int3ThenIretq_RoundTrips delivers int3 from recorded Linux
// states, checks the frame and the handler's state, then runs the
// handler's iretq and checks the vCPU is back where it was, one byte on.
func TestStep_Int3ThenIretq_RoundTrips(t *testing.T) {
	tests := []struct {
		name      string
		l         layout
		paged     bool
		user      bool
		ist       uint8
		wantStack uint64 // the handler's RSP
		wantSS    kvm.Segment
	}{
		{name: "kernel/identity", l: identityLayout,
			wantStack: 0x8f50 - 40, wantSS: segKernelSS},
		{name: "kernel/paged/frame-straddles-pages", l: kernelLayout, paged: true,
			wantStack: 0xffffc90000010010 - 40, wantSS: segKernelSS},
		{name: "kernel/IST1", l: identityLayout, ist: 1,
			wantStack: 0xc000 - 40, wantSS: segKernelSS},
		{name: "kernel/paged/IST1", l: kernelLayout, paged: true, ist: 1,
			wantStack: 0xffffc90000030000 - 40, wantSS: segKernelSS},
		{name: "user/RSP0", l: identityLayout, user: true,
			wantStack: 0xa000 - 40, wantSS: nullStack(0)},
		{name: "user/paged/RSP0", l: kernelLayout, paged: true, user: true,
			wantStack: 0xffffc90000020000 - 40, wantSS: nullStack(0)},
		{name: "user/IST1", l: identityLayout, user: true, ist: 1,
			wantStack: 0xc000 - 40, wantSS: nullStack(0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cpu, mem := newLinux(t, tt.l, tt.paged, tt.user)
			writeLinear(t, mem, cpu, tt.l.idt+vectorBP*gateSize+4, []byte{tt.ist})
			before, beforeS := cpu.regs, cpu.sregs

			mustStep(t, cpu, mem, "int3")
			wantFrame := quads(before.RIP+1, uint64(beforeS.CS.Selector), before.RFLAGS, before.RSP, uint64(beforeS.SS.Selector))
			if got := readLinear(t, mem, cpu, tt.wantStack, 40); !bytes.Equal(got, wantFrame) {
				t.Errorf("frame at %#x = % x, want % x", tt.wantStack, got, wantFrame)
			}
			wantRegs := before
			wantRegs.RIP, wantRegs.RSP, wantRegs.RFLAGS = tt.l.handler, tt.wantStack, 0x46
			if cpu.regs != wantRegs {
				t.Errorf("regs in handler = %+v, want %+v", cpu.regs, wantRegs)
			}
			if cpu.sregs.CS != segKernelCS || cpu.sregs.SS != tt.wantSS {
				t.Errorf("handler CS = %+v SS = %+v, want %+v and %+v", cpu.sregs.CS, cpu.sregs.SS, segKernelCS, tt.wantSS)
			}

			mustStep(t, cpu, mem, "iretq")
			wantRegs = before
			wantRegs.RIP++
			if cpu.regs != wantRegs {
				t.Errorf("regs after iretq = %+v, want %+v", cpu.regs, wantRegs)
			}
			if cpu.sregs != beforeS {
				t.Errorf("sregs after iretq = %+v, want %+v", cpu.sregs, beforeS)
			}
		})
	}
}

func mustStep(t *testing.T, cpu *fakeCPU, mem *guestmem.Memory, want string) {
	t.Helper()
	res, err := Step(cpu, mem)
	if err != nil || res != (Result{Handled: true, Mnemonic: want}) {
		t.Fatalf("Step at %#x = %+v, %v; want %s handled", cpu.regs.RIP, res, err, want)
	}
}

// TestStep_Faults sets up a guest error and checks Step names the
// exception the CPU would raise and leaves the vCPU and memory untouched.
func TestStep_Faults(t *testing.T) {
	l := identityLayout
	gate := func(b []byte) func(*fakeCPU, *guestmem.Memory) {
		return func(cpu *fakeCPU, mem *guestmem.Memory) {
			writeLinear(t, mem, cpu, l.idt+vectorBP*gateSize, b)
		}
	}
	// inHandler moves the vCPU to the handler's iretq with frame on the stack.
	inHandler := func(frame ...uint64) func(*fakeCPU, *guestmem.Memory) {
		return func(cpu *fakeCPU, mem *guestmem.Memory) {
			cpu.regs.RIP, cpu.regs.RSP = l.handler, 0x7f00
			writeLinear(t, mem, cpu, 0x7f00, quads(frame...))
		}
	}
	gdtEntryAt := func(sel uint16, d uint64) func(*fakeCPU, *guestmem.Memory) {
		return func(cpu *fakeCPU, mem *guestmem.Memory) {
			writeLinear(t, mem, cpu, l.gdt+uint64(sel&^7), quads(d))
		}
	}
	tests := []struct {
		name       string
		user       bool
		setup      func(*fakeCPU, *guestmem.Memory)
		wantInsn   string
		wantVector uint8
	}{
		{"int3/gate-not-present", false, gate(gateBytes(l.handler, kernelCS, 0, typeInterruptGate, 3, false)), "int3", VectorNP},
		{"int3/IDT-limit-too-small", false, func(cpu *fakeCPU, _ *guestmem.Memory) { cpu.sregs.IDT.Limit = 4*gateSize - 2 }, "int3", VectorGP},
		{"int3/gate-DPL-below-CPL-from-user", true, gate(gateBytes(l.handler, kernelCS, 0, typeInterruptGate, 0, true)), "int3", VectorGP},
		{"int3/call-gate", false, gate(gateBytes(l.handler, kernelCS, 0, 0xC, 3, true)), "int3", VectorGP},
		{"int3/handler-non-canonical", false, gate(gateBytes(0x0000800000000000, kernelCS, 0, typeInterruptGate, 3, true)), "int3", VectorGP},
		{"int3/gate-selector-null", false, gate(gateBytes(l.handler, 0, 0, typeInterruptGate, 3, true)), "int3", VectorGP},
		{"int3/gate-selector-past-GDT", false, gate(gateBytes(l.handler, 0x100, 0, typeInterruptGate, 3, true)), "int3", VectorGP},
		{"int3/gate-selector-is-data", false, gate(gateBytes(l.handler, kernelDS, 0, typeInterruptGate, 3, true)), "int3", VectorGP},
		{"int3/gate-selector-32-bit-code", false, gate(gateBytes(l.handler, 0x08, 0, typeInterruptGate, 3, true)), "int3", VectorGP},
		{"int3/handler-CS-not-present", false, gdtEntryAt(kernelCS, gdtEntry(0xa01b, 0, 0xfffff)), "int3", VectorNP},
		{"int3/stack-unmapped", false, func(cpu *fakeCPU, _ *guestmem.Memory) { cpu.regs.RSP = 1 << 21 }, "int3", VectorPF},
		{"int3/stack-straddles-into-unmapped", false, func(cpu *fakeCPU, _ *guestmem.Memory) { cpu.regs.RSP = 1<<20 + 0x10 }, "int3", VectorPF},
		{"int3/RSP0-unmapped", true, func(cpu *fakeCPU, mem *guestmem.Memory) { writeLinear(t, mem, cpu, l.tss+tssRSP0, quads(0x300000)) }, "int3", VectorPF},
		{"int3/RSP0-non-canonical", true, func(cpu *fakeCPU, mem *guestmem.Memory) { writeLinear(t, mem, cpu, l.tss+tssRSP0, quads(1<<63)) }, "int3", VectorSS},
		{"int3/TSS-limit", true, func(cpu *fakeCPU, _ *guestmem.Memory) { cpu.sregs.TR.Limit = 3 }, "int3", VectorTS},
		{"int3/IDT-unmapped", false, func(cpu *fakeCPU, _ *guestmem.Memory) { cpu.sregs.IDT.Base = 1 << 20 }, "int3", VectorPF},
		{"iretq/NT-set", false, func(cpu *fakeCPU, _ *guestmem.Memory) { cpu.regs.RIP = l.handler; cpu.regs.RFLAGS |= flagNT }, "iretq", VectorGP},
		{"iretq/stack-unmapped", false, func(cpu *fakeCPU, _ *guestmem.Memory) { cpu.regs.RIP, cpu.regs.RSP = l.handler, 1<<20-16 }, "iretq", VectorPF},
		{"iretq/CS-RPL-below-CPL", true, func(cpu *fakeCPU, mem *guestmem.Memory) {
			inHandler(l.text, kernelCS, 0x246, l.stack, kernelDS)(cpu, mem)
			writeLinear(t, mem, cpu, l.handler, []byte{0x48, 0xCF})
			cpu.regs.RIP = l.handler
		}, "iretq", VectorGP},
		{"iretq/CS-not-present", false, func(cpu *fakeCPU, mem *guestmem.Memory) {
			inHandler(l.userText, userCS, 0x246, l.userStack, userDS)(cpu, mem)
			gdtEntryAt(userCS, gdtEntry(0xa07b, 0, 0xfffff))(cpu, mem)
		}, "iretq", VectorNP},
		{"iretq/CS-DPL-not-RPL", false, inHandler(l.userText, kernelCS|3, 0x246, l.userStack, userDS), "iretq", VectorGP},
		{"iretq/CS-is-data", false, inHandler(l.userText, userDS, 0x246, l.userStack, userDS), "iretq", VectorGP},
		{"iretq/RIP-non-canonical", false, inHandler(0x0000800000000000, kernelCS, 0x246, l.stack, kernelDS), "iretq", VectorGP},
		{"iretq/null-SS-to-CPL3", false, inHandler(l.userText, userCS, 0x246, l.userStack, 3), "iretq", VectorGP},
		{"iretq/SS-RPL-not-CPL", false, inHandler(l.userText, userCS, 0x246, l.userStack, kernelDS), "iretq", VectorGP},
		{"iretq/SS-is-code", false, inHandler(l.userText, userCS, 0x246, l.userStack, userCS), "iretq", VectorGP},
		{"iretq/SS-not-present", false, func(cpu *fakeCPU, mem *guestmem.Memory) {
			inHandler(l.userText, userCS, 0x246, l.userStack, userDS)(cpu, mem)
			gdtEntryAt(userDS, gdtEntry(0xc073, 0, 0xfffff))(cpu, mem)
		}, "iretq", VectorSS},
		{"iretq/SS-past-GDT", false, inHandler(l.userText, userCS, 0x246, l.userStack, 0x103), "iretq", VectorGP},
		{"iretq/SS-in-missing-LDT", false, inHandler(l.userText, userCS, 0x246, l.userStack, 0x2f), "iretq", VectorGP},
		{"iretq/compat-EIP-past-limit", false, func(cpu *fakeCPU, mem *guestmem.Memory) {
			inHandler(0x5000, 0x23, 0x246, 0x6000, userDS)(cpu, mem)
			gdtEntryAt(0x23, gdtEntry(0xc0fb, 0, 0x4))(cpu, mem) // 5 pages: EIP 0x5000 is past them
		}, "iretq", VectorGP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cpu, mem := newLinux(t, l, false, tt.user)
			writeLinear(t, mem, cpu, l.handler, []byte{0x48, 0xCF})
			tt.setup(cpu, mem)
			regs, sregs := cpu.regs, cpu.sregs
			ram := snapshot(t, mem)

			res, err := Step(cpu, mem)
			var f *Fault
			if !errors.As(err, &f) || f.Vector != tt.wantVector || f.Mnemonic != tt.wantInsn {
				t.Fatalf("Step = %+v, %v; want a %s fault from %s", res, err, vectorName(tt.wantVector), tt.wantInsn)
			}
			if res.Handled || res.Mnemonic != tt.wantInsn {
				t.Errorf("Result = %+v, want unhandled %s", res, tt.wantInsn)
			}
			if cpu.sets != 0 || cpu.regs != regs || cpu.sregs != sregs {
				t.Errorf("vCPU changed on a fault (%d Set calls)", cpu.sets)
			}
			if !bytes.Equal(snapshot(t, mem), ram) {
				t.Errorf("guest memory changed on a fault")
			}
			t.Log(err)
		})
	}
}

func snapshot(t *testing.T, mem *guestmem.Memory) []byte {
	t.Helper()
	b, err := mem.Slice(0, mem.Size())
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(b)
}

// TestStep_Iretq_ToCompatibilityMode returns from a 64-bit handler to a
// 32-bit user process, which Linux does for every interrupt it takes.
func TestStep_Iretq_ToCompatibilityMode(t *testing.T) {
	l := identityLayout
	cpu, mem := newLinux(t, l, false, false)
	cpu.regs.RIP, cpu.regs.RSP = l.handler, 0x7f00
	cpu.sregs.DS = segKernelSS // DPL 0 data: nulled on the way out to CPL 3
	writeLinear(t, mem, cpu, 0x7f00, quads(0x8048000, 0x23, 0x202, 0xffffd000, userDS))

	mustStep(t, cpu, mem, "iretq")
	wantCS := kvm.Segment{Limit: 0xFFFFFFFF, Selector: 0x23, Type: 0xB, Present: 1, DPL: 3, DB: 1, S: 1, G: 1}
	if cpu.sregs.CS != wantCS || cpu.sregs.SS != segUserSS {
		t.Errorf("CS = %+v SS = %+v, want %+v and %+v", cpu.sregs.CS, cpu.sregs.SS, wantCS, segUserSS)
	}
	if cpu.regs.RIP != 0x8048000 || cpu.regs.RSP != 0xffffd000 || cpu.regs.RFLAGS != 0x202 {
		t.Errorf("RIP, RSP, RFLAGS = %#x, %#x, %#x", cpu.regs.RIP, cpu.regs.RSP, cpu.regs.RFLAGS)
	}
	if cpu.sregs.DS.Unusable != 1 || cpu.sregs.DS.Selector != 0 {
		t.Errorf("DS = %+v, want nulled", cpu.sregs.DS)
	}
	if cpu.sregs.GS.Base != 0xffff888007a00000 {
		t.Errorf("GS.Base = %#x, want it kept", cpu.sregs.GS.Base)
	}
}

// TestStep_Iretq_NullSSAtCPL0 is a kernel-to-kernel return with SS = 0, as
// after an interrupt taken from user mode.
func TestStep_Iretq_NullSSAtCPL0(t *testing.T) {
	l := identityLayout
	cpu, mem := newLinux(t, l, false, false)
	cpu.regs.RIP, cpu.regs.RSP = l.handler, 0x7f00
	writeLinear(t, mem, cpu, 0x7f00, quads(l.text, kernelCS, 0x2, 0x7f80, 0))

	mustStep(t, cpu, mem, "iretq")
	if cpu.sregs.SS != nullStack(0) || cpu.regs.RSP != 0x7f80 {
		t.Errorf("SS = %+v RSP = %#x, want %+v and 0x7f80", cpu.sregs.SS, cpu.regs.RSP, nullStack(0))
	}
}

func TestReturnFlags(t *testing.T) {
	tests := []struct {
		name        string
		cur, popped uint64
		cpl         uint8
		want        uint64
	}{
		{"CPL0 takes everything but VM", 0x2, 0x3f7fd5, 0, 0x3f7fd7 &^ flagVM},
		{"CPL0 clears", 0x3f7fd7, 0x0, 0, 0x2},
		{"CPL3 keeps IOPL and IF at IOPL 0", 0x2, flagIOPL | flagIF | flagAC | flagCF, 3, 0x2 | flagAC | flagCF},
		{"CPL3 takes IF at IOPL 3, not IOPL", flagIOPL | 0x2, flagIF, 3, flagIOPL | flagIF | 0x2},
		{"CPL3 keeps VIF and VIP", flagVIF | flagVIP | 0x2, 0, 3, flagVIF | flagVIP | 0x2},
		{"reserved bits dropped", 0x2, 1<<3 | 1<<5 | 1<<15 | 1<<22 | 1<<63, 0, 0x2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := returnFlags(tt.cur, tt.popped, tt.cpl); got != tt.want {
				t.Errorf("returnFlags(%#x, %#x, %d) = %#x, want %#x", tt.cur, tt.popped, tt.cpl, got, tt.want)
			}
		})
	}
}

func TestStep_ClacStac(t *testing.T) {
	tests := []struct {
		name        string
		code        []byte
		user        bool
		flags       uint64
		wantHandled bool
		wantFlags   uint64
		wantAdvance uint64
	}{
		{"clac/CPL0", []byte{0x0F, 0x01, 0xCA}, false, 0x246 | flagAC, true, 0x246, 3},
		{"stac/CPL0", []byte{0x0F, 0x01, 0xCB}, false, 0x246, true, 0x246 | flagAC, 3},
		{"clac/CPL0/already-clear", []byte{0x0F, 0x01, 0xCA}, false, 0x246, true, 0x246, 3},
		{"clac/CPL3", []byte{0x0F, 0x01, 0xCA}, true, 0x246 | flagAC, false, 0x246 | flagAC, 0},
		{"stac/CPL3", []byte{0x0F, 0x01, 0xCB}, true, 0x246, false, 0x246, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cpu, mem := newLinux(t, identityLayout, false, tt.user)
			writeLinear(t, mem, cpu, cpu.regs.RIP, tt.code)
			cpu.regs.RFLAGS = tt.flags
			rip := cpu.regs.RIP

			res, err := Step(cpu, mem)
			if err != nil || res.Handled != tt.wantHandled {
				t.Fatalf("Step = %+v, %v; want handled %v", res, err, tt.wantHandled)
			}
			if cpu.regs.RFLAGS != tt.wantFlags || cpu.regs.RIP != rip+tt.wantAdvance {
				t.Errorf("RFLAGS = %#x RIP = %#x, want %#x and %#x", cpu.regs.RFLAGS, cpu.regs.RIP, tt.wantFlags, rip+tt.wantAdvance)
			}
		})
	}
}

// TestStep_FetchAcrossPage puts an instruction across a page boundary
// whose two pages are not physically adjacent.
func TestStep_FetchAcrossPage(t *testing.T) {
	tests := []struct {
		name     string
		split    int // bytes on the first page
		mapNext  bool
		written  int // bytes of the instruction in memory
		wantRes  Result
		wantPF   bool
		wantRIPΔ uint64
	}{
		{"clac/1+2", 1, true, 3, Result{Handled: true, Mnemonic: "clac"}, false, 3},
		{"clac/2+1", 2, true, 3, Result{Handled: true, Mnemonic: "clac"}, false, 3},
		{"clac/next-page-unmapped", 2, false, 2, Result{Mnemonic: "clac"}, true, 0},
		{"int3/next-page-unmapped", 1, false, 1, Result{Handled: true, Mnemonic: "int3"}, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cpu, mem := newLinux(t, kernelLayout, true, false)
			pt := newPageTables(mem, cpu.sregs.CR3)
			pt.next = 0x90000 // past the tables newLinux built
			const code = 0xffffffff82000000
			pt.mapPage(t, code-pageSize, 0x60000, 0)
			if tt.mapNext {
				pt.mapPage(t, code, 0x40000, 0)
			}
			rip := uint64(code) - uint64(tt.split)
			insn := []byte{0x0F, 0x01, 0xCA}
			if tt.wantRes.Mnemonic == "int3" {
				insn = []byte{0xCC}
			}
			writeLinear(t, mem, cpu, rip, insn[:tt.written])
			cpu.regs.RIP, cpu.regs.RFLAGS = rip, 0x246|flagAC

			res, err := Step(cpu, mem)
			var f *Fault
			if res != tt.wantRes || errors.As(err, &f) != tt.wantPF || (err != nil && f == nil) {
				t.Fatalf("Step = %+v, %v; want %+v, page fault %v", res, err, tt.wantRes, tt.wantPF)
			}
			if tt.wantRIPΔ != 0 && cpu.regs.RIP != rip+tt.wantRIPΔ {
				t.Errorf("RIP = %#x, want %#x", cpu.regs.RIP, rip+tt.wantRIPΔ)
			}
		})
	}
}

// TestStep_NotHandled: other bytes and other modes are left alone.
func TestStep_NotHandled(t *testing.T) {
	compat := func(cpu *fakeCPU) { cpu.sregs.CS.L, cpu.sregs.CS.DB = 0, 1 }
	tests := []struct {
		name   string
		code   []byte
		mode   func(*fakeCPU)
		wantMn string
	}{
		{"nop", []byte{0x90}, nil, ""},
		{"iret-32", []byte{0xCF}, nil, ""},
		{"iretw", []byte{0x66, 0xCF}, nil, ""},
		{"rex.wb-iret", []byte{0x49, 0xCF}, nil, ""},
		{"int-3-long-form", []byte{0xCD, 0x03}, nil, ""},
		{"prefixed-int3", []byte{0x2E, 0xCC}, nil, ""},
		// 0F AE is group 15: the LDMXCSR/STMXCSR entry matches and declines.
		{"xsave", []byte{0x0F, 0xAE, 0x27}, nil, "ldmxcsr/stmxcsr"},
		{"encls", []byte{0x0F, 0x01, 0xCF}, nil, ""},
		{"int3/compat-mode", []byte{0xCC}, compat, "int3"},
		{"iretq/compat-mode", []byte{0x48, 0xCF}, compat, "iretq"},
		{"int3/no-LMA", []byte{0xCC}, func(cpu *fakeCPU) { cpu.sregs.EFER &^= eferLMA }, "int3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cpu, mem := newLinux(t, identityLayout, false, false)
			writeLinear(t, mem, cpu, cpu.regs.RIP, tt.code)
			if tt.mode != nil {
				tt.mode(cpu)
			}
			regs := cpu.regs

			res, err := Step(cpu, mem)
			if err != nil || res != (Result{Mnemonic: tt.wantMn}) {
				t.Errorf("Step = %+v, %v; want not handled", res, err)
			}
			if cpu.sets != 0 || cpu.regs != regs {
				t.Errorf("vCPU changed")
			}
		})
	}
}

// TestStep_RIPUnmapped: with nothing to read there is nothing to decode.
func TestStep_RIPUnmapped(t *testing.T) {
	cpu, mem := newLinux(t, identityLayout, false, false)
	cpu.regs.RIP = 1 << 30
	res, err := Step(cpu, mem)
	var f *Fault
	if res != (Result{}) || !errors.As(err, &f) || f.Vector != VectorPF || f.Mnemonic != "fetch" {
		t.Errorf("Step = %+v, %v; want a page fault", res, err)
	}
}
