package emulate

import (
	"encoding/binary"
	"fmt"
)

// LDMXCSR and STMXCSR (0F AE /2 and /3, Intel SDM vol. 2) with a memory
// operand: Linux's kernel_fpu_begin loads the default MXCSR with LDMXCSR,
// which kvm_pvm's emulator cannot execute. The operand is decoded from the
// ModRM (and SIB and displacement) bytes; legacy prefixes, including
// segment overrides, are not handled.

const (
	cr4OSFXSR     = 1 << 9
	cr0EM         = 1 << 2
	mxcsrMask     = 0xFFFF // bits 16-31 are reserved: setting them is #GP
	opcodeGroup15 = 0xAE
	modrmRegLD    = 2
	modrmRegST    = 3
)

// mxcsr performs LDMXCSR or STMXCSR, with or without a REX prefix.
func (v *vcpu) mxcsr() (bool, error) {
	if !v.longMode() {
		return false, nil
	}
	insn, err := v.fetch(15)
	if len(insn) < 3 {
		return false, err
	}
	var rex byte
	if insn[0]&0xF0 == 0x40 {
		rex, insn = insn[0], insn[1:]
	}
	if len(insn) < 3 || insn[0] != 0x0F || insn[1] != opcodeGroup15 {
		return false, nil
	}
	modrm := insn[2]
	mod, reg := modrm>>6, (modrm>>3)&7
	if mod == 3 || (reg != modrmRegLD && reg != modrmRegST) {
		return false, nil // a register form or another group-15 instruction
	}
	addr, n, ok := v.effectiveAddress(rex, insn[2:])
	if !ok {
		return false, nil
	}
	length := uint64(n + 2)
	if rex != 0 {
		length++
	}
	// #UD without OSFXSR or with EM; #NM with TS: leave those failures be.
	if v.sregs.CR4&cr4OSFXSR == 0 || v.sregs.CR0&(cr0EM|cr0TS) != 0 {
		return false, nil
	}
	fpu, err := v.cpu.GetFPU()
	if err != nil {
		return false, err
	}
	if reg == modrmRegLD {
		b, err := v.mem.read(addr, 4)
		if err != nil {
			return false, named("ldmxcsr", err)
		}
		val := binary.LittleEndian.Uint32(b)
		if val&^mxcsrMask != 0 {
			return false, nil // #GP: reserved bits
		}
		fpu.MXCSR = val
		if err := v.cpu.SetFPU(fpu); err != nil {
			return false, fmt.Errorf("emulate: %w", err)
		}
	} else {
		sp, err := v.mem.spans(addr, 4, true, v.sregs.CR0&cr0WP != 0)
		if err != nil {
			return false, named("stmxcsr", err)
		}
		data := binary.LittleEndian.AppendUint32(nil, fpu.MXCSR)
		v.pending = append(v.pending, write{spans: sp, data: data})
	}
	v.regs.RIP += length
	return true, nil
}

// effectiveAddress decodes a 64-bit-mode memory operand starting at the
// ModRM byte: base + index*scale + displacement, or RIP-relative. It
// returns the address and how many bytes ModRM, SIB and displacement took.
func (v *vcpu) effectiveAddress(rex byte, b []byte) (uint64, int, bool) {
	modrm := b[0]
	mod, rm := modrm>>6, modrm&7
	n := 1
	var addr uint64
	switch {
	case rm == 4: // SIB
		if len(b) < 2 {
			return 0, 0, false
		}
		sib := b[1]
		n++
		scale, index, base := sib>>6, (sib>>3)&7|(rex>>1&1)<<3, sib&7|(rex&1)<<3
		if index != 4 { // index 100 without REX.X means none
			addr += v.gpr(index) << scale
		}
		if base&7 == 5 && mod == 0 {
			d, ok := disp(b[n:], 4)
			if !ok {
				return 0, 0, false
			}
			return addr + d, n + 4, true
		}
		addr += v.gpr(base)
	case rm == 5 && mod == 0: // RIP-relative: from the next instruction
		d, ok := disp(b[n:], 4)
		if !ok {
			return 0, 0, false
		}
		// The instruction ends right after the displacement.
		end := v.regs.RIP + uint64(n+4) + 2
		if rex != 0 {
			end++
		}
		return end + d, n + 4, true
	default:
		addr = v.gpr(rm | (rex&1)<<3)
	}
	switch mod {
	case 1:
		d, ok := disp(b[n:], 1)
		if !ok {
			return 0, 0, false
		}
		return addr + d, n + 1, true
	case 2:
		d, ok := disp(b[n:], 4)
		if !ok {
			return 0, 0, false
		}
		return addr + d, n + 4, true
	}
	return addr, n, true
}

// disp reads a sign-extended displacement of size 1 or 4.
func disp(b []byte, size int) (uint64, bool) {
	if len(b) < size {
		return 0, false
	}
	if size == 1 {
		return uint64(int64(int8(b[0]))), true
	}
	return uint64(int64(int32(binary.LittleEndian.Uint32(b)))), true
}

// gpr returns general-purpose register i in the x86 encoding order.
func (v *vcpu) gpr(i byte) uint64 {
	r := &v.regs
	return [16]uint64{r.RAX, r.RCX, r.RDX, r.RBX, r.RSP, r.RBP, r.RSI, r.RDI,
		r.R8, r.R9, r.R10, r.R11, r.R12, r.R13, r.R14, r.R15}[i&15]
}
