package emulate

// x87 status word bits (Intel SDM vol. 1, 8.1.3).
const fswES = 1 << 7 // an unmasked exception is pending

// fwait performs FWAIT/WAIT (9B), which Linux's FPU code issues after x87
// control instructions. The CPU raises #NM when CR0.TS and CR0.MP are both
// set, and #MF when an unmasked x87 exception is pending; those cases are
// left to the failure they already are. Otherwise it only moves RIP on.
func (v *vcpu) fwait() (bool, error) {
	if v.sregs.CR0&(cr0TS|cr0MP) == cr0TS|cr0MP {
		return false, nil
	}
	fpu, err := v.cpu.GetFPU()
	if err != nil {
		return false, err
	}
	if fpu.FSW&fswES != 0 {
		return false, nil
	}
	v.regs.RIP++
	if !v.longMode() {
		v.regs.RIP = uint64(uint32(v.regs.RIP))
	}
	return true, nil
}
