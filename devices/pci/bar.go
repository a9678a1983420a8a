package pci

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// NumBARs is the number of BAR registers in a type-0 header.
const NumBARs = 6

// BARKind is the address space a BAR decodes.
type BARKind uint8

// BAR kinds; the zero value is an unused BAR.
const (
	BARMem32 BARKind = iota + 1 // memory below 4 GiB, one register
	BARMem64                    // memory anywhere, two registers (low, high)
	BARIO                       // I/O ports
)

// Low flag bits of a BAR register (§6.2.5.1); they are read-only.
const (
	barSpaceIO      = 0x1 // bit 0: 1 for I/O, 0 for memory
	barMemType64    = 0x4 // bits 2:1 = 10b: a 64-bit memory BAR
	barPrefetchable = 0x8 // bit 3: reads have no side effects
	barMemFlags     = 0xF // bits 3:0 of a memory BAR
	barIOFlags      = 0x3 // bits 1:0 of an I/O BAR
)

// BAR size limits (§6.2.5.1).
const (
	minMemBARSize   = 16      // bits 3:0 are flags
	maxMem32BARSize = 1 << 31 // bit 31 must stay writable
	maxMem64BARSize = 1 << 63
	minIOBARSize    = 4   // bits 1:0 are flags
	maxIOBARSize    = 256 // "may not consume more than 256 bytes per BAR"

	space32 = 1 << 32 // a 32-bit BAR decodes below 4 GiB
)

// ErrInvalidBAR reports a BAR that SetBAR cannot install.
var ErrInvalidBAR = errors.New("invalid BAR")

// BAR describes one region a function decodes.
type BAR struct {
	Kind         BARKind
	Size         uint64 // a power of two
	Prefetchable bool   // memory BARs only
	// Addr is the address the BAR holds at reset, naturally aligned (see
	// BARAllocator); the guest may move it. 0 leaves it unassigned.
	Addr uint64
}

// BARMapping is where a BAR decodes. Decoding is true only while the BAR
// holds a non-zero address, is not in the middle of sizing (a register
// reading back its size mask), and COMMAND enables the BAR's space.
type BARMapping struct {
	Addr     uint64
	Decoding bool
}

// BARChange reports that a guest write turned a BAR's decoding on or off or
// moved it while decoding: the owner unmaps [Old.Addr, +Size) if
// Old.Decoding and maps [New.Addr, +Size) if New.Decoding.
type BARChange struct {
	Index    int
	Kind     BARKind
	Size     uint64
	Old, New BARMapping
}

type barState struct {
	BAR
	upper bool       // this register is the high half of the BAR below it
	last  BARMapping // as last reported
}

// SetBAR installs BAR index, which must be unused (for a BARMem64, index+1
// too). It is meant for device setup, before the guest runs.
func (c *Config) SetBAR(index int, b BAR) error {
	if err := checkBAR(index, b); err != nil {
		return fmt.Errorf("BAR%d: %w", index, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bars[index].Kind != 0 || c.bars[index].upper ||
		b.Kind == BARMem64 && (c.bars[index+1].Kind != 0 || c.bars[index+1].upper) {
		return fmt.Errorf("BAR%d: %w: already in use", index, ErrInvalidBAR)
	}
	off := RegBAR0 + 4*index
	sizeMask := ^(b.Size - 1)
	var flags uint32
	switch b.Kind {
	case BARIO:
		flags = barSpaceIO
		binary.LittleEndian.PutUint32(c.wmask[off:], uint32(sizeMask)&^barIOFlags)
	case BARMem32, BARMem64:
		if b.Kind == BARMem64 {
			flags = barMemType64
			binary.LittleEndian.PutUint32(c.wmask[off+4:], uint32(sizeMask>>32))
			c.put32(off+4, uint32(b.Addr>>32))
			c.bars[index+1].upper = true
		}
		if b.Prefetchable {
			flags |= barPrefetchable
		}
		binary.LittleEndian.PutUint32(c.wmask[off:], uint32(sizeMask)&^barMemFlags)
	}
	c.put32(off, uint32(b.Addr)|flags)
	c.bars[index] = barState{BAR: b}
	c.bars[index].last = c.mapping(index)
	return nil
}

func checkBAR(index int, b BAR) error {
	last := NumBARs - 1
	if b.Kind == BARMem64 {
		last--
	}
	if index < 0 || index > last {
		return fmt.Errorf("%w: no such register", ErrInvalidBAR)
	}
	lo, hi, space := uint64(minMemBARSize), uint64(maxMem32BARSize), uint64(space32)
	switch b.Kind {
	case BARMem32:
	case BARMem64:
		hi, space = maxMem64BARSize, 0 // 0: the whole 64-bit space
	case BARIO:
		lo, hi = minIOBARSize, maxIOBARSize
		if b.Prefetchable {
			return fmt.Errorf("%w: an I/O BAR cannot be prefetchable", ErrInvalidBAR)
		}
	default:
		return fmt.Errorf("%w: kind %d", ErrInvalidBAR, b.Kind)
	}
	if bits.OnesCount64(b.Size) != 1 || b.Size < lo || b.Size > hi {
		return fmt.Errorf("%w: size %#x is not a power of two in [%#x, %#x]", ErrInvalidBAR, b.Size, lo, hi)
	}
	if b.Addr&(b.Size-1) != 0 || space != 0 && b.Addr > space-b.Size {
		return fmt.Errorf("%w: address %#x is not aligned to size %#x or does not fit", ErrInvalidBAR, b.Addr, b.Size)
	}
	return nil
}

// OnBARChange sets fn to be told of every BARChange a guest write causes. It
// runs on the writing vCPU, after the write, without the Config's lock held,
// so it may read the Config again.
func (c *Config) OnBARChange(fn func(BARChange)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onBAR = fn
}

// BARMapping returns where BAR index decodes now, and its description (with
// Addr as programmed). An unused or upper-half register has Kind 0.
func (c *Config) BARMapping(index int) (BAR, BARMapping) {
	if index < 0 || index >= NumBARs {
		return BAR{}, BARMapping{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.bars[index].BAR
	if b.Kind == 0 {
		return BAR{}, BARMapping{}
	}
	m := c.mapping(index)
	b.Addr = m.Addr
	return b, m
}

// mapping computes where BAR index decodes from the registers.
func (c *Config) mapping(index int) BARMapping {
	b := &c.bars[index]
	off := RegBAR0 + 4*index
	lo, loMask := c.reg32(off), binary.LittleEndian.Uint32(c.wmask[off:])
	sizing := loMask != 0 && lo&loMask == loMask
	var addr uint64
	var enable uint16
	switch b.Kind {
	case BARIO:
		addr, enable = uint64(lo&^barIOFlags), CmdIOSpace
	case BARMem32:
		addr, enable = uint64(lo&^barMemFlags), CmdMemSpace
	case BARMem64:
		hi, hiMask := c.reg32(off+4), binary.LittleEndian.Uint32(c.wmask[off+4:])
		// A 64-bit address whose low half is all ones in the writable bits
		// (the top Size bytes of a 4 GiB stretch) reads as sizing too: the
		// price of telling sizing apart without tracking the write order.
		sizing = sizing || hi == hiMask
		addr, enable = uint64(lo&^barMemFlags)|uint64(hi)<<32, CmdMemSpace
	default:
		return BARMapping{}
	}
	on := c.reg16(RegCommand)&enable != 0 && addr != 0 && !sizing
	return BARMapping{Addr: addr, Decoding: on}
}

// updateMappings recomputes every BAR's mapping and returns those that
// changed in a way the owner must act on.
func (c *Config) updateMappings() []BARChange {
	var changes []BARChange
	for i := range c.bars {
		b := &c.bars[i]
		if b.Kind == 0 {
			continue
		}
		m := c.mapping(i)
		old := b.last
		b.last = m
		if m.Decoding == old.Decoding && (!m.Decoding || m.Addr == old.Addr) {
			continue
		}
		changes = append(changes, BARChange{Index: i, Kind: b.Kind, Size: b.Size, Old: old, New: m})
	}
	return changes
}
