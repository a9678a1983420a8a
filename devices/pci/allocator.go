package pci

import (
	"errors"
	"fmt"
	"math/bits"
	"sort"
	"sync"
)

// ErrBARSpaceExhausted reports that a BARAllocator's window has no naturally
// aligned gap left for a request.
var ErrBARSpaceExhausted = errors.New("BAR window exhausted")

// BARAllocator places BARs in a window of guest physical (or port) address
// space, each naturally aligned to its size as BAR decoding requires
// (§6.2.5.1), first fit from the bottom. For the 32-bit MMIO hole below the
// IOAPIC (0xFEC0_0000) and LAPIC (0xFEE0_0000) that is
//
//	NewBARAllocator(0xC000_0000, 0xFEC0_0000)
//
// or a wider window with Reserve for the holes.
type BARAllocator struct {
	start, end uint64 // the window, [start, end)

	mu   sync.Mutex
	used []span // allocations and reservations, sorted by base, disjoint
}

// span is [base, end); end may be 0 to mean 2^64.
type span struct{ base, end uint64 }

// NewBARAllocator returns an allocator for [start, end); end 0 means the
// window runs to the top of the 64-bit space.
func NewBARAllocator(start, end uint64) (*BARAllocator, error) {
	if end != 0 && end <= start {
		return nil, fmt.Errorf("BAR window [%#x, %#x) is empty", start, end)
	}
	return &BARAllocator{start: start, end: end}, nil
}

// Reserve keeps [base, base+size) out of later allocations, for a device
// that sits at a fixed address inside the window.
func (a *BARAllocator) Reserve(base, size uint64) error {
	end := base + size
	if size == 0 || end != 0 && end < base {
		return fmt.Errorf("reserve [%#x, +%#x): empty or wrapping", base, size)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	i := sort.Search(len(a.used), func(i int) bool { return a.used[i].base >= base })
	if i > 0 && a.used[i-1].overlaps(base, end) || i < len(a.used) && a.used[i].overlaps(base, end) {
		return fmt.Errorf("reserve [%#x, +%#x): overlaps an earlier allocation", base, size)
	}
	a.insert(i, span{base, end})
	return nil
}

// Alloc returns the lowest address in the window aligned to size where
// size bytes are free, and marks them used. size must be a power of two.
func (a *BARAllocator) Alloc(size uint64) (uint64, error) {
	if bits.OnesCount64(size) != 1 {
		return 0, fmt.Errorf("allocate %#x bytes: %w: size not a power of two", size, ErrInvalidBAR)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	addr, ok := alignUp(a.start, size)
	i := 0
	for ok {
		// addr is aligned to the power of two size, so end does not wrap
		// past 2^64; it is 0 when it reaches it.
		end := addr + size
		if a.end != 0 && (end == 0 || end > a.end) {
			break
		}
		for i < len(a.used) && a.used[i].end != 0 && a.used[i].end <= addr {
			i++ // entirely below the candidate
		}
		if i == len(a.used) || !a.used[i].overlaps(addr, end) {
			a.insert(i, span{addr, end})
			return addr, nil
		}
		if a.used[i].end == 0 {
			break
		}
		addr, ok = alignUp(a.used[i].end, size)
	}
	return 0, fmt.Errorf("allocate %#x bytes in [%#x, %#x): %w", size, a.start, a.end, ErrBARSpaceExhausted)
}

func (a *BARAllocator) insert(i int, s span) {
	a.used = append(a.used, span{})
	copy(a.used[i+1:], a.used[i:])
	a.used[i] = s
}

// overlaps reports whether s and [base, end) share a byte; end 0 is 2^64.
func (s span) overlaps(base, end uint64) bool {
	return (end == 0 || s.base < end) && (s.end == 0 || base < s.end)
}

// alignUp rounds v up to a multiple of the power of two align, reporting
// false on overflow.
func alignUp(v, align uint64) (uint64, bool) {
	r := (v + align - 1) &^ (align - 1)
	return r, r >= v
}
