package pci

import (
	"errors"
	"testing"
)

func TestBAR_SizingProtocol(t *testing.T) {
	tests := []struct {
		name   string
		reg    uint64
		orig   uint32 // as set up
		sizing uint32 // read back after writing all ones
	}{
		{"32-bit memory 4 KiB", RegBAR0, rigBAR0Addr, 0xFFFF_F000},
		{"I/O 32 ports", RegBAR0 + 4, rigIOAddr | barSpaceIO, 0xFFFF_FFE0 | barSpaceIO},
		{"64-bit prefetchable 16 KiB, low", RegBAR0 + 8, barMemType64 | barPrefetchable, 0xFFFF_C000 | barMemType64 | barPrefetchable},
		{"64-bit prefetchable 16 KiB, high", RegBAR0 + 12, rigBAR2Addr >> 32, 0xFFFF_FFFF},
		{"unused", RegBAR0 + 20, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			if got := r.read(rigDev, tt.reg, 4); got != tt.orig {
				t.Fatalf("initial %#x, want %#x", got, tt.orig)
			}
			r.write(rigDev, tt.reg, 4, 0xFFFF_FFFF)
			if got := r.read(rigDev, tt.reg, 4); got != tt.sizing {
				t.Fatalf("after all ones %#x, want %#x", got, tt.sizing)
			}
			r.write(rigDev, tt.reg, 4, tt.orig)
			if got := r.read(rigDev, tt.reg, 4); got != tt.orig {
				t.Fatalf("restored %#x, want %#x", got, tt.orig)
			}
		})
	}
}

func TestBAR_64BitLargerThan4GiB(t *testing.T) {
	c := NewConfig(Header{})
	must(t, c.SetBAR(4, BAR{Kind: BARMem64, Size: 8 << 30}))
	c.WriteConfig(RegBAR0+16, le64(^uint64(0)))
	data := make([]byte, 8)
	c.ReadConfig(RegBAR0+16, data)
	if got, want := leN(data[:4]), uint32(barMemType64); got != want {
		t.Fatalf("low after sizing %#x, want %#x (no writable address bits)", got, want)
	}
	if got, want := leN(data[4:]), uint32(0xFFFF_FFFE); got != want {
		t.Fatalf("high after sizing %#x, want %#x", got, want)
	}
}

func TestBAR_64BitPairFormsOneAddress(t *testing.T) {
	r := newRig(t)
	r.write(rigDev, RegBAR0+8, 4, 0x8000_0000)
	r.write(rigDev, RegBAR0+12, 4, 0x12)
	r.write(rigDev, RegCommand, 2, CmdMemSpace)
	b, m := r.cfg.BARMapping(2)
	want := BARMapping{Addr: 0x12_8000_0000, Decoding: true}
	if b.Kind != BARMem64 || b.Size != rigBAR2Size || m != want {
		t.Fatalf("BARMapping(2) = %+v, %+v, want 64-bit 16 KiB %+v", b, m, want)
	}
	if b, _ := r.cfg.BARMapping(3); b.Kind != 0 {
		t.Fatalf("BAR3 (upper half) reads as its own BAR: %+v", b)
	}
}

func TestBAR_DecodingFollowsCommand(t *testing.T) {
	type step struct {
		reg  uint64
		size int
		v    uint32
	}
	on := BARMapping{Addr: rigBAR0Addr, Decoding: true}
	moved := BARMapping{Addr: 0xD000_0000, Decoding: true}
	tests := []struct {
		name  string
		steps []step
		want  []BARChange // for BAR0 and BAR1 only
	}{
		{"address without MEM", []step{{RegBAR0, 4, 0xD000_0000}}, nil},
		{"MEM enables", []step{{RegCommand, 2, CmdMemSpace}},
			[]BARChange{{Index: 0, Kind: BARMem32, Size: rigBAR0Size, Old: BARMapping{Addr: rigBAR0Addr}, New: on}}},
		{"move while on", []step{{RegCommand, 2, CmdMemSpace}, {RegBAR0, 4, 0xD000_0000}},
			[]BARChange{
				{Index: 0, Kind: BARMem32, Size: rigBAR0Size, Old: BARMapping{Addr: rigBAR0Addr}, New: on},
				{Index: 0, Kind: BARMem32, Size: rigBAR0Size, Old: on, New: moved},
			}},
		{"sizing while on stops decoding", []step{{RegCommand, 2, CmdMemSpace}, {RegBAR0, 4, 0xFFFF_FFFF}},
			[]BARChange{
				{Index: 0, Kind: BARMem32, Size: rigBAR0Size, Old: BARMapping{Addr: rigBAR0Addr}, New: on},
				{Index: 0, Kind: BARMem32, Size: rigBAR0Size, Old: on, New: BARMapping{Addr: 0xFFFF_F000}},
			}},
		{"IO enables only the I/O BAR", []step{{RegCommand, 2, CmdIOSpace}},
			[]BARChange{{Index: 1, Kind: BARIO, Size: rigIOSize, Old: BARMapping{Addr: rigIOAddr}, New: BARMapping{Addr: rigIOAddr, Decoding: true}}}},
		{"address 0 does not decode", []step{{RegBAR0, 4, 0}, {RegCommand, 2, CmdMemSpace}}, nil},
		{"byte write to the address", []step{{RegCommand, 2, CmdMemSpace}, {RegBAR0 + 3, 1, 0xD0}},
			[]BARChange{
				{Index: 0, Kind: BARMem32, Size: rigBAR0Size, Old: BARMapping{Addr: rigBAR0Addr}, New: on},
				{Index: 0, Kind: BARMem32, Size: rigBAR0Size, Old: on, New: moved},
			}},
		{"MEM off", []step{{RegCommand, 2, CmdMemSpace}, {RegCommand, 2, 0}},
			[]BARChange{
				{Index: 0, Kind: BARMem32, Size: rigBAR0Size, Old: BARMapping{Addr: rigBAR0Addr}, New: on},
				{Index: 0, Kind: BARMem32, Size: rigBAR0Size, Old: on, New: BARMapping{Addr: rigBAR0Addr}},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			for _, s := range tt.steps {
				r.write(rigDev, s.reg, s.size, s.v)
			}
			var got []BARChange
			for _, c := range r.changes {
				if c.Index < 2 {
					got = append(got, c)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("changes %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("change %d: %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestBAR_CallbackMayReadTheConfig(t *testing.T) {
	r := newRig(t)
	var seen uint16
	r.cfg.OnBARChange(func(BARChange) { seen = r.cfg.Command() }) // would deadlock if called under the lock
	r.write(rigDev, RegCommand, 2, CmdMemSpace)
	if seen != CmdMemSpace {
		t.Fatalf("callback saw COMMAND %#x", seen)
	}
}

func TestSetBAR_64BitNeedsBothRegisters(t *testing.T) {
	c := NewConfig(Header{})
	must(t, c.SetBAR(1, BAR{Kind: BARMem32, Size: 0x1000}))
	if err := c.SetBAR(0, BAR{Kind: BARMem64, Size: 0x1000}); !errors.Is(err, ErrInvalidBAR) {
		t.Fatalf("64-bit BAR over a used upper register: %v, want ErrInvalidBAR", err)
	}
}
