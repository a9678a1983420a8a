package emulate

// RFLAGS bits (SDM vol. 1, 3.4.3).
const (
	flagCF    = 1 << 0
	flagFixed = 1 << 1 // reads as 1
	flagPF    = 1 << 2
	flagAF    = 1 << 4
	flagZF    = 1 << 6
	flagSF    = 1 << 7
	flagTF    = 1 << 8
	flagIF    = 1 << 9
	flagDF    = 1 << 10
	flagOF    = 1 << 11
	flagIOPL  = 3 << 12
	flagNT    = 1 << 14
	flagRF    = 1 << 16
	flagVM    = 1 << 17
	flagAC    = 1 << 18
	flagVIF   = 1 << 19
	flagVIP   = 1 << 20
	flagID    = 1 << 21

	iopShift = 12
)

// clac clears RFLAGS.AC at CPL 0.
func (v *vcpu) clac() (bool, error) { return v.setAC(false) }

// stac sets RFLAGS.AC at CPL 0.
func (v *vcpu) stac() (bool, error) { return v.setAC(true) }

// setAC performs CLAC or STAC (0F 01 CA/CB, three bytes). Above CPL 0 the
// CPU raises #UD; that, like the CPUID.SMAP check this does not make, is
// left to the failure it already is.
func (v *vcpu) setAC(on bool) (bool, error) {
	if v.cpl() != 0 {
		return false, nil
	}
	if on {
		v.regs.RFLAGS |= flagAC
	} else {
		v.regs.RFLAGS &^= flagAC
	}
	v.regs.RIP += 3
	if !v.longMode() {
		v.regs.RIP = uint64(uint32(v.regs.RIP))
	}
	return true, nil
}
