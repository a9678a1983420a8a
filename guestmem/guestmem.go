// Package guestmem owns guest physical memory: the host mappings behind it
// and bounds- and overflow-checked access by guest physical address.
//
// Devices and loaders never index a raw slice with a guest- or file-controlled
// value; they go through ReadAt/WriteAt/Slice, which return an error for any
// access that is not entirely inside one region.
package guestmem

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
)

// GuestAddr is a guest physical address.
type GuestAddr uint64

// Add returns a+n and whether the sum did not overflow.
func (a GuestAddr) Add(n uint64) (GuestAddr, bool) {
	s := uint64(a) + n
	return GuestAddr(s), s >= uint64(a)
}

func (a GuestAddr) String() string { return fmt.Sprintf("%#x", uint64(a)) }

// ErrOutOfRange is returned (wrapped in *RangeError) for an access that is
// not entirely inside guest memory.
var ErrOutOfRange = errors.New("guest memory access out of range")

// RangeError names the access that fell outside guest memory.
type RangeError struct {
	Addr GuestAddr
	Len  uint64
}

func (e *RangeError) Error() string {
	return fmt.Sprintf("guest memory access [%#x, +%#x) out of range", uint64(e.Addr), e.Len)
}

func (e *RangeError) Unwrap() error { return ErrOutOfRange }

// RegionSpec describes one contiguous range of guest RAM.
type RegionSpec struct {
	Start GuestAddr
	Size  uint64
}

// End returns the first address past the region.
func (r RegionSpec) End() GuestAddr { return GuestAddr(uint64(r.Start) + r.Size) }

// Region is one mapped range of guest RAM.
type Region struct {
	RegionSpec
	host []byte
}

// Memory is the guest's physical RAM: non-overlapping regions sorted by
// address. It is safe for concurrent use as long as callers do not race on
// the same bytes, as with real RAM.
type Memory struct {
	regions []Region
	mapped  bool // host slices came from mmap and must be unmapped
}

// x86 layout constants: RAM above MMIOHoleStart is moved past 4 GiB so the
// 32-bit MMIO hole (PCI BARs, IOAPIC, LAPIC) stays free.
const (
	MMIOHoleStart GuestAddr = 0xC000_0000
	MMIOHoleEnd   GuestAddr = 0x1_0000_0000
)

// MaxSize bounds a guest's RAM so arithmetic on addresses stays far from
// overflow (1 TiB).
const MaxSize = 1 << 40

// X86Layout splits size bytes of RAM around the 32-bit MMIO hole: up to
// 3 GiB at 0, the rest from 4 GiB.
func X86Layout(size uint64) ([]RegionSpec, error) {
	if size == 0 {
		return nil, errors.New("guest memory size is zero")
	}
	if size > MaxSize {
		return nil, fmt.Errorf("guest memory size %d exceeds the %d-byte limit", size, uint64(MaxSize))
	}
	low := uint64(MMIOHoleStart)
	if size <= low {
		return []RegionSpec{{Start: 0, Size: size}}, nil
	}
	return []RegionSpec{
		{Start: 0, Size: low},
		{Start: MMIOHoleEnd, Size: size - low},
	}, nil
}

// New maps anonymous, private memory for each region. Pages are touched only
// when the guest (or a loader) uses them, so a large guest costs the host
// only what it writes, rounded up to 2 MiB above the boot area where the
// host has transparent huge pages (see mapRAM).
func New(specs []RegionSpec) (*Memory, error) {
	if err := checkSpecs(specs); err != nil {
		return nil, err
	}
	m := &Memory{mapped: true}
	for _, s := range specs {
		if s.Size > math.MaxInt {
			m.Close()
			return nil, fmt.Errorf("region at %v: size %#x too large for this host", s.Start, s.Size)
		}
		var skip uint64
		if s.Start == 0 {
			skip = bootArea
		}
		b, err := mapRAM(s.Size, skip)
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("map %d MiB of guest memory at %v: %w", s.Size>>20, s.Start, err)
		}
		m.regions = append(m.regions, Region{RegionSpec: s, host: b})
	}
	return m, nil
}

// NewFromBytes builds a Memory over caller-owned buffers, for tests: each
// buffer backs the region with the same index.
func NewFromBytes(specs []RegionSpec, bufs [][]byte) (*Memory, error) {
	if len(specs) != len(bufs) {
		return nil, errors.New("guestmem: one buffer per region")
	}
	if err := checkSpecs(specs); err != nil {
		return nil, err
	}
	m := &Memory{}
	for i, s := range specs {
		if uint64(len(bufs[i])) != s.Size {
			return nil, fmt.Errorf("guestmem: buffer %d has %d bytes, region wants %d", i, len(bufs[i]), s.Size)
		}
		m.regions = append(m.regions, Region{RegionSpec: s, host: bufs[i]})
	}
	return m, nil
}

// NewTest returns size bytes of zeroed RAM at guest address 0, backed by the
// Go heap: the in-memory guest memory unit tests use.
func NewTest(size uint64) *Memory {
	m, err := NewFromBytes([]RegionSpec{{Start: 0, Size: size}}, [][]byte{make([]byte, size)})
	if err != nil {
		panic(err)
	}
	return m
}

func checkSpecs(specs []RegionSpec) error {
	if len(specs) == 0 {
		return errors.New("guestmem: no regions")
	}
	if !sort.SliceIsSorted(specs, func(i, j int) bool { return specs[i].Start < specs[j].Start }) {
		return errors.New("guestmem: regions not sorted by address")
	}
	var total uint64
	for i, s := range specs {
		if s.Size == 0 {
			return fmt.Errorf("guestmem: region %d is empty", i)
		}
		if _, ok := s.Start.Add(s.Size); !ok {
			return fmt.Errorf("guestmem: region %d wraps the address space", i)
		}
		if i > 0 && specs[i-1].End() > s.Start {
			return fmt.Errorf("guestmem: region %d overlaps region %d", i, i-1)
		}
		total += s.Size
	}
	if total > MaxSize {
		return fmt.Errorf("guestmem: %d bytes of regions exceed the %d-byte limit", total, uint64(MaxSize))
	}
	return nil
}

// Close unmaps every region. The Memory must not be used afterwards.
func (m *Memory) Close() error {
	var first error
	if m.mapped {
		for _, r := range m.regions {
			if err := unmapRAM(r.host); err != nil && first == nil {
				first = err
			}
		}
	}
	m.regions = nil
	return first
}

// Regions returns the regions' specs, sorted by address.
func (m *Memory) Regions() []RegionSpec {
	out := make([]RegionSpec, len(m.regions))
	for i, r := range m.regions {
		out[i] = r.RegionSpec
	}
	return out
}

// Size returns the total RAM in bytes.
func (m *Memory) Size() uint64 {
	var n uint64
	for _, r := range m.regions {
		n += r.Size
	}
	return n
}

// End returns the first address past the highest region.
func (m *Memory) End() GuestAddr {
	if len(m.regions) == 0 {
		return 0
	}
	return m.regions[len(m.regions)-1].End()
}

// Slice returns the host bytes backing [addr, addr+n). The range must lie
// inside a single region. The slice aliases guest memory.
func (m *Memory) Slice(addr GuestAddr, n uint64) ([]byte, error) {
	end, ok := addr.Add(n)
	if !ok {
		return nil, &RangeError{Addr: addr, Len: n}
	}
	// Find the last region starting at or below addr. There are one to
	// three (below and above the PCI hole), so a scan from the top beats
	// a binary search through a closure on every device access.
	i := len(m.regions) - 1
	for i >= 0 && m.regions[i].Start > addr {
		i--
	}
	if i < 0 {
		return nil, &RangeError{Addr: addr, Len: n}
	}
	r := &m.regions[i]
	if end > r.End() {
		return nil, &RangeError{Addr: addr, Len: n}
	}
	off := uint64(addr - r.Start)
	return r.host[off : off+n : off+n], nil
}

// Contains reports whether [addr, addr+n) lies inside one region.
func (m *Memory) Contains(addr GuestAddr, n uint64) bool {
	_, err := m.Slice(addr, n)
	return err == nil
}

// ReadAt copies len(p) bytes from guest memory at addr into p.
func (m *Memory) ReadAt(p []byte, addr GuestAddr) error {
	b, err := m.Slice(addr, uint64(len(p)))
	if err != nil {
		return err
	}
	copy(p, b)
	return nil
}

// WriteAt copies p into guest memory at addr.
func (m *Memory) WriteAt(p []byte, addr GuestAddr) error {
	b, err := m.Slice(addr, uint64(len(p)))
	if err != nil {
		return err
	}
	copy(b, p)
	return nil
}

// ReadObj decodes a fixed-size little-endian value (as encoding/binary
// defines) from guest memory at addr into v, a pointer.
func (m *Memory) ReadObj(addr GuestAddr, v any) error {
	n := binary.Size(v)
	if n < 0 {
		return fmt.Errorf("guestmem: %T has no fixed size", v)
	}
	b, err := m.Slice(addr, uint64(n))
	if err != nil {
		return err
	}
	_, err = binary.Decode(b, binary.LittleEndian, v)
	return err
}

// WriteObj encodes a fixed-size value little-endian into guest memory at addr.
func (m *Memory) WriteObj(addr GuestAddr, v any) error {
	n := binary.Size(v)
	if n < 0 {
		return fmt.Errorf("guestmem: %T has no fixed size", v)
	}
	b, err := m.Slice(addr, uint64(n))
	if err != nil {
		return err
	}
	_, err = binary.Encode(b, binary.LittleEndian, v)
	return err
}

// Read/Write helpers for the little-endian integers devices use most.

func (m *Memory) ReadUint16(addr GuestAddr) (uint16, error) {
	b, err := m.Slice(addr, 2)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(b), nil
}

func (m *Memory) ReadUint32(addr GuestAddr) (uint32, error) {
	b, err := m.Slice(addr, 4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (m *Memory) ReadUint64(addr GuestAddr) (uint64, error) {
	b, err := m.Slice(addr, 8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

func (m *Memory) WriteUint16(addr GuestAddr, v uint16) error {
	b, err := m.Slice(addr, 2)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint16(b, v)
	return nil
}

func (m *Memory) WriteUint32(addr GuestAddr, v uint32) error {
	b, err := m.Slice(addr, 4)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(b, v)
	return nil
}

func (m *Memory) WriteUint64(addr GuestAddr, v uint64) error {
	b, err := m.Slice(addr, 8)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint64(b, v)
	return nil
}
