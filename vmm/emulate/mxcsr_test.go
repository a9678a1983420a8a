package emulate

import (
	"encoding/binary"
	"testing"
)

func TestStep_LdmxcsrStmxcsr(t *testing.T) {
	le := binary.LittleEndian
	tests := []struct {
		name        string
		code        []byte
		setup       func(c *fakeCPU)
		memAt       func(c *fakeCPU) uint64 // where the operand lives
		memVal      uint32
		wantHandled bool
		wantMXCSR   uint32
		wantStored  bool
	}{
		{"ldmxcsr [rsp+4] (Linux's kernel_fpu_begin)", []byte{0x0F, 0xAE, 0x54, 0x24, 0x04}, nil,
			func(c *fakeCPU) uint64 { return c.regs.RSP + 4 }, 0x1F80, true, 0x1F80, false},
		{"ldmxcsr [r13+8] with REX.B", []byte{0x41, 0x0F, 0xAE, 0x55, 0x08},
			func(c *fakeCPU) { c.regs.R13 = c.regs.RSP - 0x40 },
			func(c *fakeCPU) uint64 { return c.regs.R13 + 8 }, 0x9FC0, true, 0x9FC0, false},
		{"ldmxcsr [rip+0x10]", []byte{0x0F, 0xAE, 0x15, 0x10, 0, 0, 0}, nil,
			func(c *fakeCPU) uint64 { return c.regs.RIP + 7 + 0x10 }, 0x1F81, true, 0x1F81, false},
		{"ldmxcsr [rax]", []byte{0x0F, 0xAE, 0x10},
			func(c *fakeCPU) { c.regs.RAX = c.regs.RSP - 0x100 },
			func(c *fakeCPU) uint64 { return c.regs.RAX }, 0x1F80, true, 0x1F80, false},
		{"reserved bits: #GP stays a failure", []byte{0x0F, 0xAE, 0x54, 0x24, 0x04}, nil,
			func(c *fakeCPU) uint64 { return c.regs.RSP + 4 }, 0x10000, false, 0x1234, false},
		{"CR0.TS: #NM stays a failure", []byte{0x0F, 0xAE, 0x54, 0x24, 0x04},
			func(c *fakeCPU) { c.sregs.CR0 |= cr0TS },
			func(c *fakeCPU) uint64 { return c.regs.RSP + 4 }, 0x1F80, false, 0x1234, false},
		{"stmxcsr [rsp+8]", []byte{0x0F, 0xAE, 0x5C, 0x24, 0x08}, nil,
			func(c *fakeCPU) uint64 { return c.regs.RSP + 8 }, 0, true, 0x1234, true},
		{"fxsave [rsp] is not handled", []byte{0x0F, 0xAE, 0x04, 0x24}, nil,
			func(c *fakeCPU) uint64 { return c.regs.RSP }, 0, false, 0x1234, false},
		{"register form is not handled", []byte{0x0F, 0xAE, 0xD0}, nil,
			func(c *fakeCPU) uint64 { return c.regs.RSP }, 0, false, 0x1234, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cpu, mem := newLinux(t, identityLayout, false, false)
			cpu.sregs.CR4 |= cr4OSFXSR
			cpu.fpu.MXCSR = 0x1234
			if tt.setup != nil {
				tt.setup(cpu)
			}
			writeLinear(t, mem, cpu, cpu.regs.RIP, tt.code)
			at := tt.memAt(cpu)
			writeLinear(t, mem, cpu, at, le.AppendUint32(nil, tt.memVal))
			rip := cpu.regs.RIP
			res, err := Step(cpu, mem)
			if err != nil || res.Handled != tt.wantHandled {
				t.Fatalf("Step = %+v, %v; want handled %v", res, err, tt.wantHandled)
			}
			if cpu.fpu.MXCSR != tt.wantMXCSR {
				t.Errorf("MXCSR = %#x, want %#x", cpu.fpu.MXCSR, tt.wantMXCSR)
			}
			wantRIP := rip
			if tt.wantHandled {
				wantRIP += uint64(len(tt.code))
			}
			if cpu.regs.RIP != wantRIP {
				t.Errorf("RIP = %#x, want %#x", cpu.regs.RIP, wantRIP)
			}
			if tt.wantStored {
				b := readLinear(t, mem, cpu, at, 4)
				if got := le.Uint32(b); got != 0x1234 {
					t.Errorf("stored %#x, want 0x1234", got)
				}
			}
		})
	}
}
