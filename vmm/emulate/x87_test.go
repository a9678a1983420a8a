package emulate

import "testing"

func TestStep_Fwait(t *testing.T) {
	tests := []struct {
		name        string
		cr0         uint64
		fsw         uint16
		wantHandled bool
	}{
		{"no exception pending", 0x80050033, 0, true},
		{"masked exception flags only", 0x80050033, 0x3F, true},
		{"unmasked exception pending: #MF", 0x80050033, fswES | 0x1, false},
		{"TS and MP set: #NM", 0x80050033 | cr0TS, 0, false},
		{"TS without MP", (0x80050033 &^ cr0MP) | cr0TS, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cpu, mem := newLinux(t, identityLayout, false, false)
			writeLinear(t, mem, cpu, cpu.regs.RIP, []byte{0x9B, 0x65, 0x48})
			cpu.sregs.CR0 = tt.cr0
			cpu.fpu.FSW = tt.fsw
			rip := cpu.regs.RIP
			res, err := Step(cpu, mem)
			if err != nil || res.Handled != tt.wantHandled || res.Mnemonic != "fwait" {
				t.Fatalf("Step = %+v, %v; want handled %v", res, err, tt.wantHandled)
			}
			want := rip
			if tt.wantHandled {
				want++
			}
			if cpu.regs.RIP != want {
				t.Errorf("RIP = %#x, want %#x", cpu.regs.RIP, want)
			}
		})
	}
}
