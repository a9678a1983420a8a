package pci

import (
	"errors"
	"testing"
)

func TestConfigIO_ReadsAtEveryAlignment(t *testing.T) {
	r := newRig(t)
	// 00:01.0's DWORD 0 is device 0x1041, vendor 0x1AF4.
	tests := []struct {
		lane uint64
		size int
		want uint32
	}{
		{0, 4, 0x1041_1AF4},
		{0, 2, 0x1AF4}, {1, 2, 0x411A}, {2, 2, 0x1041},
		{0, 1, 0xF4}, {1, 1, 0x1A}, {2, 1, 0x41}, {3, 1, 0x10},
	}
	for _, tt := range tests {
		r.io.Write(configAddrPort, le32(cfgAddr(rigDev, RegVendorID)))
		data := make([]byte, tt.size)
		r.io.Read(configDataPort+tt.lane, data)
		if got := leN(data); got != tt.want {
			t.Errorf("%d bytes at 0xCFC+%d = %#x, want %#x", tt.size, tt.lane, got, tt.want)
		}
	}
}

func TestConfigIO_WritesAtEveryAlignment(t *testing.T) {
	const dword = headerSize + 4 // the rig's vendor capability: a writable DWORD of its body
	tests := []struct {
		lane uint64
		size int
		v    uint32
		want uint32 // the whole DWORD afterwards, from zero
	}{
		{0, 4, 0x4433_2211, 0x4433_2211},
		{0, 2, 0x2211, 0x0000_2211}, {1, 2, 0x3322, 0x0033_2200}, {2, 2, 0x4433, 0x4433_0000},
		{0, 1, 0x11, 0x11}, {1, 1, 0x22, 0x2200}, {2, 1, 0x33, 0x33_0000}, {3, 1, 0x44, 0x4400_0000},
	}
	for _, tt := range tests {
		r := newRig(t)
		r.io.Write(configAddrPort, le32(cfgAddr(rigDev, dword)))
		r.io.Write(configDataPort+tt.lane, le32(tt.v)[:tt.size])
		if got := r.read(rigDev, dword, 4); got != tt.want {
			t.Errorf("%d bytes %#x at 0xCFC+%d: DWORD %#x, want %#x", tt.size, tt.v, tt.lane, got, tt.want)
		}
	}
}

func TestConfigIO_AbsentFunctionsReadAllOnes(t *testing.T) {
	tests := []struct {
		name string
		addr uint32
	}{
		{"empty device 5", cfgAddr(5, 0)},
		{"device 31", cfgAddr(31, 0)},
		{"function 1 of the host bridge", cfgAddrEnable | 1<<cfgAddrFnShift},
		{"bus 1", cfgAddrEnable | 1<<cfgAddrBusShift | rigDev<<cfgAddrDevShift},
		{"enable bit clear", rigDev << cfgAddrDevShift},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			r.io.Write(configAddrPort, le32(tt.addr))
			r.io.Write(configDataPort, le32(0)) // ignored
			for _, size := range []int{1, 2, 4} {
				for lane := uint64(0); lane+uint64(size) <= dwordSize; lane++ {
					data := make([]byte, size)
					r.io.Read(configDataPort+lane, data)
					if want := uint32(1)<<(8*size) - 1; leN(data) != want {
						t.Fatalf("%d bytes at lane %d: %#x, want %#x", size, lane, leN(data), want)
					}
				}
			}
			if got := r.read(rigDev, RegVendorID, 2); got != 0x1AF4 {
				t.Fatalf("present device's vendor id %#x after the writes", got)
			}
		})
	}
}

func TestConfigIO_HostBridge(t *testing.T) {
	r := newRig(t)
	if got := r.read(0, RegVendorID, 4); got != HostBridgeDeviceID<<16|HostBridgeVendorID {
		t.Fatalf("00:00.0 ids %#x", got)
	}
	if got := r.read(0, RegRevisionID, 4) >> 8; got != ClassHostBridge {
		t.Fatalf("00:00.0 class %#x, want %#x", got, ClassHostBridge)
	}
}

func TestConfigIO_AddressRegister(t *testing.T) {
	r := newRig(t)
	read := func(off uint64, size int) uint32 {
		data := make([]byte, size)
		r.io.Read(off, data)
		return leN(data)
	}
	r.io.Write(configAddrPort, le32(0xFFFF_FFFF))
	if got := read(configAddrPort, 4); got != cfgAddrWritable {
		t.Fatalf("CONFIG_ADDRESS after all ones %#x, want %#x (reserved bits 0)", got, cfgAddrWritable)
	}
	// Linux's pci_check_type1: a byte write to 0xCFB must not change
	// CONFIG_ADDRESS, and a DWORD write must read back.
	r.io.Write(3, []byte{0x01})
	r.io.Write(configAddrPort, le32(cfgAddrEnable))
	if got := read(configAddrPort, 4); got != cfgAddrEnable {
		t.Fatalf("CONFIG_ADDRESS %#x, want %#x", got, cfgAddrEnable)
	}
	r.io.Write(configAddrPort, []byte{0, 0})
	if got := read(configAddrPort, 4); got != cfgAddrEnable {
		t.Fatalf("word write changed CONFIG_ADDRESS to %#x", got)
	}
	if got := read(configAddrPort, 2); got != 0xFFFF {
		t.Fatalf("word read of 0xCF8 = %#x, want all ones", got)
	}
}

func TestECAM_SameSpacesAsConfigIO(t *testing.T) {
	r := newRig(t)
	base := uint64(rigDev) << ecamDevShift
	read := func(off uint64, size int) uint32 {
		data := make([]byte, size)
		r.ecam.Read(off, data)
		return leN(data)
	}
	if got := read(base+RegVendorID, 4); got != 0x1041_1AF4 {
		t.Fatalf("ids through ECAM %#x", got)
	}
	r.ecam.Write(base+RegInterruptLine, []byte{9})
	if got := r.read(rigDev, RegInterruptLine, 1); got != 9 {
		t.Fatalf("interrupt line through 0xCFC %d after an ECAM write, want 9", got)
	}
	r.write(rigDev, RegCommand, 2, CmdMemSpace)
	if got := read(base+RegCommand, 2); got != CmdMemSpace {
		t.Fatalf("COMMAND through ECAM %#x", got)
	}
	if got := read(base+0x100, 4); got != 0 {
		t.Fatalf("extended space %#x, want 0 (no extended capabilities)", got)
	}
	tests := []struct {
		name string
		off  uint64
	}{
		{"absent device", 5 << ecamDevShift},
		{"function 1", base | 1<<ecamFnShift},
		{"bus 1", 1<<ecamBusShift | base},
		{"across a page", base | 0xFFE},
	}
	for _, tt := range tests {
		if got := read(tt.off, 4); got != 0xFFFF_FFFF {
			t.Errorf("%s: %#x, want all ones", tt.name, got)
		}
	}
}

func TestBus_Add(t *testing.T) {
	b := NewBus()
	if err := b.AddAt(0, NewConfig(Header{})); !errors.Is(err, ErrSlotInUse) {
		t.Fatalf("AddAt(0) over the host bridge: %v, want ErrSlotInUse", err)
	}
	if err := b.AddAt(NumDevices, NewConfig(Header{})); !errors.Is(err, ErrNoSuchSlot) {
		t.Fatalf("AddAt(32): %v, want ErrNoSuchSlot", err)
	}
	for want := 1; want < NumDevices; want++ {
		if got, err := b.Add(NewConfig(Header{})); err != nil || got != want {
			t.Fatalf("Add = %d, %v, want %d", got, err, want)
		}
	}
	if _, err := b.Add(NewConfig(Header{})); !errors.Is(err, ErrBusFull) {
		t.Fatalf("Add on a full bus: %v, want ErrBusFull", err)
	}
}
