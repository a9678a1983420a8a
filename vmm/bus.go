package vmm

import (
	"fmt"
	"sort"
	"sync"
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
type Bus struct {
	name   string
	mu     sync.RWMutex // guards ranges; inserts happen at setup, lookups on every exit
	ranges []busRange   // sorted by base
}

// NewBus returns an empty bus; name ("pio", "mmio") appears in errors.
func NewBus(name string) *Bus { return &Bus{name: name} }

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
	i := sort.Search(len(b.ranges), func(i int) bool { return b.ranges[i].base >= base })
	if i > 0 && b.ranges[i-1].end() > base {
		p := b.ranges[i-1]
		return fmt.Errorf("%s bus: %s at [%#x, %#x) overlaps %s at [%#x, %#x)", b.name, name, base, base+size, p.name, p.base, p.end())
	}
	if i < len(b.ranges) && b.ranges[i].base < base+size {
		n := b.ranges[i]
		return fmt.Errorf("%s bus: %s at [%#x, %#x) overlaps %s at [%#x, %#x)", b.name, name, base, base+size, n.name, n.base, n.end())
	}
	b.ranges = append(b.ranges, busRange{})
	copy(b.ranges[i+1:], b.ranges[i:])
	b.ranges[i] = busRange{base: base, size: size, name: name, dev: dev}
	return nil
}

// find returns the range holding all of [addr, addr+n), if any.
func (b *Bus) find(addr, n uint64) (busRange, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	i := sort.Search(len(b.ranges), func(i int) bool { return b.ranges[i].base > addr }) - 1
	if i < 0 {
		return busRange{}, false
	}
	r := b.ranges[i]
	if addr+n < addr || addr+n > r.end() {
		return busRange{}, false // beyond the range, or running past its end
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
	for i, r := range b.ranges {
		if r.base == base {
			b.ranges = append(b.ranges[:i], b.ranges[i+1:]...)
			return true
		}
	}
	return false
}
