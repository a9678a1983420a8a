package vmm

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
)

// Device is what a bus dispatches to: accesses at an offset from the base
// the device was inserted at. len(data) is the access width (1, 2, 4 or 8).
// Devices satisfy it without importing this package.
type Device interface {
	Read(offset uint64, data []byte)
	Write(offset uint64, data []byte)
}

// busRange is one device's slot on a bus.
type busRange struct {
	base, size uint64
	name       string
	dev        Device
}

func (r busRange) end() uint64 { return r.base + r.size }

// Bus maps address ranges to devices: the port-I/O bus or the MMIO bus.
// Ranges never overlap; an access must fall entirely inside one range.
//
// Every port and MMIO exit looks an address up here, from every vCPU
// thread at once, while changes are rare (set-up, a PCI BAR moving). So the
// sorted table is never changed in place: a change builds a new one and
// publishes it, and a lookup reads whichever table is current without a
// lock (a read lock's shared counter would bounce between vCPUs' caches).
type Bus struct {
	name   string
	mu     sync.Mutex                 // serialises Insert and Remove
	ranges atomic.Pointer[[]busRange] // sorted by base; replaced, never modified
}

// NewBus returns an empty bus; name ("pio", "mmio") appears in errors.
func NewBus(name string) *Bus { return &Bus{name: name} }

// table is the current sorted table.
func (b *Bus) table() []busRange {
	if t := b.ranges.Load(); t != nil {
		return *t
	}
	return nil
}

// Insert adds dev at [base, base+size). It fails on an empty or wrapping
// range and on overlap with a device already there.
func (b *Bus) Insert(base, size uint64, name string, dev Device) error {
	if size == 0 {
		return fmt.Errorf("%s bus: %s: empty range at %#x", b.name, name, base)
	}
	if base+size < base {
		return fmt.Errorf("%s bus: %s: range at %#x size %#x wraps", b.name, name, base, size)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.table()
	i := sort.Search(len(old), func(i int) bool { return old[i].base >= base })
	if i > 0 && old[i-1].end() > base {
		p := old[i-1]
		return fmt.Errorf("%s bus: %s at [%#x, %#x) overlaps %s at [%#x, %#x)", b.name, name, base, base+size, p.name, p.base, p.end())
	}
	if i < len(old) && old[i].base < base+size {
		n := old[i]
		return fmt.Errorf("%s bus: %s at [%#x, %#x) overlaps %s at [%#x, %#x)", b.name, name, base, base+size, n.name, n.base, n.end())
	}
	t := make([]busRange, 0, len(old)+1)
	t = append(t, old[:i]...)
	t = append(t, busRange{base: base, size: size, name: name, dev: dev})
	t = append(t, old[i:]...)
	b.ranges.Store(&t)
	return nil
}

// find returns the range holding all of [addr, addr+n), if any. A few
// devices sit on each bus, so a binary search over a small array (written
// out: sort.Search's closure costs a call per step) beats a map or a
// 64 K-entry port table, which would cost memory in every VM.
func (b *Bus) find(addr, n uint64) (*busRange, bool) {
	t := b.table()
	lo, hi := 0, len(t) // the answer is the last range with base <= addr
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if t[mid].base <= addr {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == 0 {
		return nil, false
	}
	r := &t[lo-1]
	if addr+n < addr || addr+n > r.end() {
		return nil, false // beyond the range, or running past its end
	}
	return r, true
}

// Read dispatches a read; it reports false when no device handles the whole
// access, in which case data is left for the caller to fill.
func (b *Bus) Read(addr uint64, data []byte) bool {
	r, ok := b.find(addr, uint64(len(data)))
	if !ok {
		return false
	}
	r.dev.Read(addr-r.base, data)
	return true
}

// Write dispatches a write; it reports false when no device handles it.
func (b *Bus) Write(addr uint64, data []byte) bool {
	r, ok := b.find(addr, uint64(len(data)))
	if !ok {
		return false
	}
	r.dev.Write(addr-r.base, data)
	return true
}

// Remove takes the device at base off the bus, for a PCI BAR the guest
// moved or stopped decoding. It reports whether one was there.
func (b *Bus) Remove(base uint64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.table()
	for i, r := range old {
		if r.base == base {
			t := make([]busRange, 0, len(old)-1)
			t = append(t, old[:i]...)
			t = append(t, old[i+1:]...)
			b.ranges.Store(&t)
			return true
		}
	}
	return false
}
