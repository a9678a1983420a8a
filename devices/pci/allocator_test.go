package pci

import (
	"errors"
	"testing"
)

func TestBARAllocator_NaturalAlignmentFirstFit(t *testing.T) {
	a, err := NewBARAllocator(0xC000_0000, 0xFEC0_0000)
	must(t, err)
	tests := []struct {
		size, want uint64
	}{
		{0x1000, 0xC000_0000},
		{0x4000, 0xC000_4000}, // aligned past the first page, leaving a gap
		{0x1000, 0xC000_1000}, // fills the gap
		{0x2000, 0xC000_2000}, // fills the rest of it
		{0x10_0000, 0xC010_0000},
		{0x10, 0xC000_8000},
		{0x10, 0xC000_8010},
	}
	for _, tt := range tests {
		got, err := a.Alloc(tt.size)
		if err != nil || got != tt.want {
			t.Fatalf("Alloc(%#x) = %#x, %v, want %#x", tt.size, got, err, tt.want)
		}
		if got%tt.size != 0 {
			t.Fatalf("Alloc(%#x) = %#x: not naturally aligned", tt.size, got)
		}
	}
}

func TestBARAllocator_Exhaustion(t *testing.T) {
	a, err := NewBARAllocator(0xFE00_0000, 0xFEC0_0000) // 12 MiB
	must(t, err)
	for _, size := range []uint64{0x40_0000, 0x40_0000, 0x40_0000} {
		if _, err := a.Alloc(size); err != nil {
			t.Fatalf("Alloc(%#x): %v", size, err)
		}
	}
	for _, size := range []uint64{0x1000, 0x100_0000, 1 << 63} {
		if _, err := a.Alloc(size); !errors.Is(err, ErrBARSpaceExhausted) {
			t.Fatalf("Alloc(%#x) on a full window: %v, want ErrBARSpaceExhausted", size, err)
		}
	}
}

func TestBARAllocator_WindowTooSmallForAlignment(t *testing.T) {
	a, err := NewBARAllocator(0xC000_1000, 0xC000_3000) // 8 KiB, not 8 KiB aligned
	must(t, err)
	if _, err := a.Alloc(0x2000); !errors.Is(err, ErrBARSpaceExhausted) {
		t.Fatalf("Alloc: %v, want ErrBARSpaceExhausted", err)
	}
}

func TestBARAllocator_ReserveSkipsHoles(t *testing.T) {
	a, err := NewBARAllocator(0xFEB0_0000, 0) // runs to 2^64
	must(t, err)
	must(t, a.Reserve(0xFEC0_0000, 0x1000)) // IOAPIC
	must(t, a.Reserve(0xFEE0_0000, 0x10_0000))
	if err := a.Reserve(0xFEE8_0000, 0x1000); err == nil {
		t.Fatal("overlapping Reserve succeeded")
	}
	for _, tt := range []struct{ size, want uint64 }{
		{0x10_0000, 0xFEB0_0000},
		{0x10_0000, 0xFED0_0000}, // skips the IOAPIC's megabyte
		{0x10_0000, 0xFEF0_0000}, // skips the LAPIC's
		{1 << 63, 1 << 63},
	} {
		if got, err := a.Alloc(tt.size); err != nil || got != tt.want {
			t.Fatalf("Alloc(%#x) = %#x, %v, want %#x", tt.size, got, err, tt.want)
		}
	}
	if _, err := a.Alloc(1 << 63); !errors.Is(err, ErrBARSpaceExhausted) {
		t.Fatalf("second 2^63 Alloc: %v, want ErrBARSpaceExhausted", err)
	}
}

func TestBARAllocator_RejectsBadArguments(t *testing.T) {
	if _, err := NewBARAllocator(0x2000, 0x1000); err == nil {
		t.Fatal("NewBARAllocator with end below start succeeded")
	}
	a, err := NewBARAllocator(0, 1<<32)
	must(t, err)
	for _, size := range []uint64{0, 3, 0x1800} {
		if _, err := a.Alloc(size); !errors.Is(err, ErrInvalidBAR) {
			t.Fatalf("Alloc(%#x): %v, want ErrInvalidBAR", size, err)
		}
	}
	if err := a.Reserve(^uint64(0), 2); err == nil {
		t.Fatal("wrapping Reserve succeeded")
	}
}
