package guestmem

import (
	"errors"
	"testing"
)

func TestX86Layout(t *testing.T) {
	for _, tc := range []struct {
		size uint64
		want []RegionSpec
	}{
		{128 << 20, []RegionSpec{{0, 128 << 20}}},
		{3 << 30, []RegionSpec{{0, 3 << 30}}},
		{5 << 30, []RegionSpec{{0, 3 << 30}, {MMIOHoleEnd, 2 << 30}}},
	} {
		got, err := X86Layout(tc.size)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(tc.want) {
			t.Fatalf("size %#x: got %v, want %v", tc.size, got, tc.want)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("size %#x region %d: got %v, want %v", tc.size, i, got[i], tc.want[i])
			}
		}
	}
	if _, err := X86Layout(0); err == nil {
		t.Error("zero size accepted")
	}
	if _, err := X86Layout(MaxSize + 1); err == nil {
		t.Error("oversized memory accepted")
	}
}

func twoRegions(t *testing.T) *Memory {
	t.Helper()
	m, err := NewFromBytes(
		[]RegionSpec{{0, 0x1000}, {0x10000, 0x1000}},
		[][]byte{make([]byte, 0x1000), make([]byte, 0x1000)})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestAccess_InsideRegions(t *testing.T) {
	m := twoRegions(t)
	if err := m.WriteAt([]byte("abcd"), 0x10ffc); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if err := m.ReadAt(buf, 0x10ffc); err != nil || string(buf) != "abcd" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if err := m.WriteUint64(0x8, 0x1122334455667788); err != nil {
		t.Fatal(err)
	}
	if v, err := m.ReadUint32(0xc); err != nil || v != 0x11223344 {
		t.Fatalf("little-endian read %#x, %v", v, err)
	}
	type pair struct{ A, B uint32 }
	if err := m.WriteObj(0x100, pair{1, 2}); err != nil {
		t.Fatal(err)
	}
	var p pair
	if err := m.ReadObj(0x100, &p); err != nil || p != (pair{1, 2}) {
		t.Fatalf("obj %+v, %v", p, err)
	}
}

func TestAccess_OutsideRegions_IsRangeError(t *testing.T) {
	m := twoRegions(t)
	for _, tc := range []struct {
		addr GuestAddr
		n    uint64
	}{
		{0xffe, 4},                 // runs past the first region
		{0x1000, 1},                // in the gap
		{0x10fff, 2},               // past the end
		{0x20000, 1},               // above everything
		{GuestAddr(^uint64(0)), 2}, // wraps
		{0, ^uint64(0)},            // huge
	} {
		_, err := m.Slice(tc.addr, tc.n)
		var re *RangeError
		if !errors.As(err, &re) || !errors.Is(err, ErrOutOfRange) {
			t.Errorf("[%#x,+%#x): err = %v, want RangeError", uint64(tc.addr), tc.n, err)
		}
	}
}

func TestNew_MapsAndCloses(t *testing.T) {
	layout, err := X86Layout(5 << 30)
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(layout) // lazily mapped: costs nothing until touched
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Size() != 5<<30 || m.End() != MMIOHoleEnd+(2<<30) {
		t.Fatalf("size %#x end %v", m.Size(), m.End())
	}
	if err := m.WriteUint32(MMIOHoleEnd+0x1000, 7); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ReadUint32(MMIOHoleStart); err == nil {
		t.Fatal("the MMIO hole must not be RAM")
	}
	if hr := m.HostRegions(); len(hr) != 2 || hr[1].HostAddr == 0 {
		t.Fatalf("host regions %+v", hr)
	}
}

func TestNewFromBytes_RejectsBadSpecs(t *testing.T) {
	for name, specs := range map[string][]RegionSpec{
		"overlap":  {{0, 0x2000}, {0x1000, 0x1000}},
		"unsorted": {{0x1000, 0x1000}, {0, 0x1000}},
		"empty":    {{0, 0}},
		"wrap":     {{GuestAddr(^uint64(0) - 10), 0x1000}},
	} {
		bufs := make([][]byte, len(specs))
		for i, s := range specs {
			if s.Size < 1<<20 {
				bufs[i] = make([]byte, s.Size)
			}
		}
		if _, err := NewFromBytes(specs, bufs); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzSlice(f *testing.F) {
	f.Add(uint64(0xffe), uint64(4))
	f.Add(uint64(0x10000), uint64(0x1000))
	f.Fuzz(func(t *testing.T, addr, n uint64) {
		m, _ := NewFromBytes([]RegionSpec{{0, 0x1000}, {0x10000, 0x1000}},
			[][]byte{make([]byte, 0x1000), make([]byte, 0x1000)})
		b, err := m.Slice(GuestAddr(addr), n)
		if err == nil && uint64(len(b)) != n {
			t.Fatalf("slice of %d bytes for %d", len(b), n)
		}
		inFirst := addr+n >= addr && addr+n <= 0x1000
		inSecond := addr >= 0x10000 && addr+n >= addr && addr+n <= 0x11000
		if (err == nil) != (inFirst || inSecond) {
			t.Fatalf("[%#x,+%#x): err %v", addr, n, err)
		}
	})
}
