package pci

import (
	"errors"
	"testing"
)

func TestConfig_ReadOnlyFieldsIgnoreWrites(t *testing.T) {
	tests := []struct {
		name string
		reg  uint64
		size int
		want uint32
	}{
		{"vendor id", RegVendorID, 2, 0x1AF4},
		{"device id", RegDeviceID, 2, 0x1041},
		{"status", RegStatus, 2, StatusCapList},
		{"revision", RegRevisionID, 1, 1},
		{"class code", RegClassCode, 1, 0x00},
		{"class code subclass and base", RegClassCode + 1, 2, 0x0200},
		{"latency timer", RegLatencyTimer, 1, 0},
		{"header type", RegHeaderType, 1, HeaderTypeNormal},
		{"bist", RegBIST, 1, 0},
		{"unused BAR4", RegBAR0 + 16, 4, 0},
		{"cardbus cis", RegCardbusCIS, 4, 0},
		{"subsystem vendor id", RegSubsystemVendorID, 2, 0x1AF4},
		{"subsystem id", RegSubsystemID, 2, 0x1100},
		{"expansion rom", RegExpansionROM, 4, 0},
		{"capabilities pointer", RegCapabilitiesPtr, 1, headerSize},
		{"interrupt pin", RegInterruptPin, 1, 1},
		{"min gnt and max lat", RegMinGnt, 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			for _, v := range []uint32{0xFFFF_FFFF, 0} {
				r.write(rigDev, tt.reg, tt.size, v)
				if got := r.read(rigDev, tt.reg, tt.size); got != tt.want {
					t.Fatalf("after writing %#x: read %#x, want %#x", v, got, tt.want)
				}
			}
		})
	}
}

func TestConfig_WritableFieldsTakeOnlyTheirBits(t *testing.T) {
	tests := []struct {
		name string
		reg  uint64
		size int
		want uint32 // after writing all ones
	}{
		{"command", RegCommand, 2, cmdWritable},
		{"command high byte", RegCommand + 1, 1, CmdINTxDisable >> 8},
		{"cache line size", RegCacheLineSize, 1, 0xFF},
		{"interrupt line", RegInterruptLine, 1, 0xFF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			r.write(rigDev, tt.reg, tt.size, 0xFFFF_FFFF)
			if got := r.read(rigDev, tt.reg, tt.size); got != tt.want {
				t.Fatalf("read %#x, want %#x", got, tt.want)
			}
			r.write(rigDev, tt.reg, tt.size, 0)
			if got := r.read(rigDev, tt.reg, tt.size); got != 0 {
				t.Fatalf("after writing 0: read %#x", got)
			}
		})
	}
}

func TestConfig_CommandVisibleToOwner(t *testing.T) {
	r := newRig(t)
	r.write(rigDev, RegCommand, 4, 0xFFFF_0000|CmdMemSpace|CmdBusMaster)
	if got := r.cfg.Command(); got != CmdMemSpace|CmdBusMaster {
		t.Fatalf("Command() = %#x, want %#x", got, CmdMemSpace|CmdBusMaster)
	}
}

func TestConfig_StatusCapListOnlyWithCapabilities(t *testing.T) {
	c := NewConfig(Header{VendorID: 1})
	data := make([]byte, 2)
	c.ReadConfig(RegStatus, data)
	if leN(data)&StatusCapList != 0 {
		t.Fatal("STATUS.CAP_LIST set with no capabilities")
	}
	if _, err := c.AddCapability(CapIDVendor, []byte{3}, nil); err != nil {
		t.Fatal(err)
	}
	c.ReadConfig(RegStatus, data)
	if leN(data)&StatusCapList == 0 {
		t.Fatal("STATUS.CAP_LIST clear with a capability")
	}
}

func TestConfig_AccessesPastTheSpace(t *testing.T) {
	c := NewConfig(Header{VendorID: 0x1234})
	data := []byte{1, 2, 3, 4}
	c.ReadConfig(ConfigSize-2, data)
	if want := []byte{0, 0, 0, 0}; string(data) != string(want) {
		t.Fatalf("read % x, want % x", data, want)
	}
	c.WriteConfig(^uint64(0)-1, []byte{0xFF, 0xFF, 0xFF, 0xFF}) // wraps: ignored
	c.ReadConfig(RegVendorID, data[:2])
	if got := leN(data[:2]); got != 0x1234 {
		t.Fatalf("vendor id %#x after a wrapping write", got)
	}
}

func TestSetBAR_Rejects(t *testing.T) {
	tests := []struct {
		name  string
		index int
		bar   BAR
	}{
		{"no kind", 0, BAR{Size: 0x1000}},
		{"index 6", 6, BAR{Kind: BARMem32, Size: 0x1000}},
		{"negative index", -1, BAR{Kind: BARMem32, Size: 0x1000}},
		{"64-bit in BAR5", 5, BAR{Kind: BARMem64, Size: 0x1000}},
		{"size not a power of two", 0, BAR{Kind: BARMem32, Size: 0x1800}},
		{"memory smaller than 16", 0, BAR{Kind: BARMem32, Size: 8}},
		{"32-bit of 4 GiB", 0, BAR{Kind: BARMem32, Size: 1 << 32}},
		{"I/O over 256", 0, BAR{Kind: BARIO, Size: 512}},
		{"I/O under 4", 0, BAR{Kind: BARIO, Size: 2}},
		{"prefetchable I/O", 0, BAR{Kind: BARIO, Size: 16, Prefetchable: true}},
		{"unaligned address", 0, BAR{Kind: BARMem32, Size: 0x1000, Addr: 0xC000_0800}},
		{"32-bit above 4 GiB", 0, BAR{Kind: BARMem32, Size: 0x1000, Addr: 1 << 32}},
		{"BAR0 taken", 0, BAR{Kind: BARMem32, Size: 0x1000}},
		{"upper half of BAR2", 3, BAR{Kind: BARMem32, Size: 0x1000}},
		{"64-bit over BAR1", 1, BAR{Kind: BARMem64, Size: 0x1000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			if err := r.cfg.SetBAR(tt.index, tt.bar); !errors.Is(err, ErrInvalidBAR) {
				t.Fatalf("SetBAR(%d, %+v) = %v, want ErrInvalidBAR", tt.index, tt.bar, err)
			}
		})
	}
}
