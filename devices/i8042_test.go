package devices

import "testing"

func newTestI8042() (*I8042, *int) {
	resets := 0
	return NewI8042(func() { resets++ }), &resets
}

func TestI8042_PulseReset_CallsResetOnlyOn0xFE(t *testing.T) {
	tests := []struct {
		name string
		cmd  bool // command port, else data port
		v    byte
		want int
	}{
		{"pulse reset on 0x64", true, i8042CmdPulseReset, 1},
		{"0xFE on the data port", false, i8042CmdPulseReset, 0},
		{"other command", true, 0xFD, 0},
		{"self-test", true, i8042CmdSelfTest, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, resets := newTestI8042()
			port := c.DataPort()
			if tt.cmd {
				port = c.CommandPort()
			}
			port.Write(0, []byte{tt.v})
			if *resets != tt.want {
				t.Fatalf("reset called %d times, want %d", *resets, tt.want)
			}
		})
	}
}

func TestI8042_Status_EmptyOutputBufferAtRest(t *testing.T) {
	c, _ := newTestI8042()
	var st [1]byte
	c.CommandPort().Read(0, st[:])
	if st[0]&(i8042StatusOBF|i8042StatusIBF) != 0 {
		t.Fatalf("status = %#x, want OBF and IBF clear", st[0])
	}
}

func TestI8042_ReadCTR_ThroughOutputBuffer(t *testing.T) {
	c, _ := newTestI8042()
	cmd, data := c.CommandPort(), c.DataPort()
	cmd.Write(0, []byte{i8042CmdWriteCTR})
	data.Write(0, []byte{0x65})
	cmd.Write(0, []byte{i8042CmdReadCTR})
	var b [1]byte
	cmd.Read(0, b[:])
	if b[0]&i8042StatusOBF == 0 {
		t.Fatalf("status = %#x after 0x20, want OBF", b[0])
	}
	data.Read(0, b[:])
	if b[0] != 0x65 {
		t.Fatalf("CTR = %#x, want 0x65", b[0])
	}
	cmd.Read(0, b[:])
	if b[0]&i8042StatusOBF != 0 {
		t.Fatalf("status = %#x after reading data, want OBF clear", b[0])
	}
}

func TestI8042_SelfTest_Answers0x55(t *testing.T) {
	c, _ := newTestI8042()
	c.CommandPort().Write(0, []byte{i8042CmdSelfTest})
	var b [1]byte
	c.DataPort().Read(0, b[:])
	if b[0] != i8042SelfTestOK {
		t.Fatalf("self-test = %#x, want 0x55", b[0])
	}
}
