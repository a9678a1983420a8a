package pci

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Capability IDs (PCI Code and ID Assignment spec, "Capability IDs").
const (
	CapIDVendor = 0x09 // vendor specific; virtio's PCI transport uses it (virtio 1.2 §4.1.4)
	CapIDMSIX   = 0x11
)

// Offsets inside every capability (§6.7).
const (
	CapOffID        = 0 // capability ID
	CapOffNext      = 1 // offset of the next capability, 0 at the end
	CapOffVendorLen = 2 // vendor-specific capabilities: total length in bytes
	capHeaderSize   = 2

	capAlign   = 4    // capabilities are DWORD aligned (§6.7)
	CapPtrMask = 0xFC // the bottom two bits of a pointer are reserved; software masks them
)

// MSI-X capability layout (§6.8.2): Message Control, then the Table and PBA
// locations, each an offset into a BAR with the BAR's index (BIR) in bits 2:0.
const (
	MSIXOffControl  = 2 // 16 bits
	MSIXOffTable    = 4 // 32 bits: Table Offset | Table BIR
	MSIXOffPBA      = 8 // 32 bits: PBA Offset | PBA BIR
	msixCapSize     = 12
	MSIXBIRMask     = 0x7     // bits 2:0
	MSIXCtlSizeMask = 0x07FF  // bits 10:0: Table Size, encoded as N-1; read-only
	MSIXCtlFuncMask = 1 << 14 // Function Mask
	MSIXCtlEnable   = 1 << 15 // MSI-X Enable
)

// ErrNoConfigSpace reports a capability that does not fit in what is left of
// the 256-byte space.
var ErrNoConfigSpace = errors.New("no room left in configuration space")

// capability is one entry of the list. onWrite, if set, runs under the
// Config's lock after a guest write that touches the capability.
type capability struct {
	off, size int
	onWrite   func(c *Config, off int)
}

// AddCapability appends a capability with the given ID and body (the bytes
// after ID and next pointer) to the list and returns its offset. wmask, if
// not nil, gives per body byte the bits the guest may write; the rest of the
// capability is read-only. Capabilities are placed DWORD aligned from 0x40.
func (c *Config) AddCapability(id byte, body, wmask []byte) (uint8, error) {
	if wmask != nil && len(wmask) != len(body) {
		return 0, fmt.Errorf("capability %#x: %d write-mask bytes for a %d-byte body", id, len(wmask), len(body))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	off, err := c.addCap(id, body, wmask, nil)
	return uint8(off), err
}

// AddVendorCapability appends a vendor-specific capability (ID 0x09). Its
// third byte is the capability's total length (§6.7: "the third byte is a
// length field"), which is virtio's cap_len; body is what follows it.
func (c *Config) AddVendorCapability(body, wmask []byte) (uint8, error) {
	full := append([]byte{byte(capHeaderSize + 1 + len(body))}, body...)
	var fullMask []byte
	if wmask != nil {
		if len(wmask) != len(body) {
			return 0, fmt.Errorf("vendor capability: %d write-mask bytes for a %d-byte body", len(wmask), len(body))
		}
		fullMask = append([]byte{0}, wmask...)
	}
	return c.AddCapability(CapIDVendor, full, fullMask)
}

// AddMSIXCapability appends the MSI-X capability for m, whose table lives at
// tableOff in BAR tableBIR and whose PBA at pbaOff in BAR pbaBIR. Both BARs
// must be memory BARs already set and large enough; offsets are 8-byte
// aligned (§6.8.2.4). Only Message Control's Enable and Function Mask bits
// are writable; writes to them reach m.
func (c *Config) AddMSIXCapability(m *MSIX, tableBIR int, tableOff uint32, pbaBIR int, pbaOff uint32) (uint8, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.checkMSIXRegion(tableBIR, tableOff, m.TableSize()); err != nil {
		return 0, fmt.Errorf("MSI-X table: %w", err)
	}
	if err := c.checkMSIXRegion(pbaBIR, pbaOff, m.PBASize()); err != nil {
		return 0, fmt.Errorf("MSI-X PBA: %w", err)
	}
	body := make([]byte, msixCapSize-capHeaderSize)
	wmask := make([]byte, len(body))
	binary.LittleEndian.PutUint16(body[MSIXOffControl-capHeaderSize:], uint16(m.Vectors()-1))
	binary.LittleEndian.PutUint16(wmask[MSIXOffControl-capHeaderSize:], MSIXCtlEnable|MSIXCtlFuncMask)
	binary.LittleEndian.PutUint32(body[MSIXOffTable-capHeaderSize:], tableOff|uint32(tableBIR))
	binary.LittleEndian.PutUint32(body[MSIXOffPBA-capHeaderSize:], pbaOff|uint32(pbaBIR))
	off, err := c.addCap(CapIDMSIX, body, wmask, func(c *Config, off int) {
		ctl := c.reg16(off + MSIXOffControl)
		m.setControl(ctl&MSIXCtlEnable != 0, ctl&MSIXCtlFuncMask != 0)
	})
	return uint8(off), err
}

func (c *Config) checkMSIXRegion(bir int, off uint32, size uint64) error {
	if bir < 0 || bir >= NumBARs {
		return fmt.Errorf("%w: BIR %d", ErrInvalidBAR, bir)
	}
	b := c.bars[bir]
	if b.Kind != BARMem32 && b.Kind != BARMem64 {
		return fmt.Errorf("%w: BAR%d is not a memory BAR", ErrInvalidBAR, bir)
	}
	if off&MSIXBIRMask != 0 || uint64(off)+size > b.Size {
		return fmt.Errorf("%w: offset %#x size %#x is unaligned or past BAR%d's %#x bytes", ErrInvalidBAR, off, size, bir, b.Size)
	}
	return nil
}

// addCap places and links a capability; the caller holds c.mu.
func (c *Config) addCap(id byte, body, wmask []byte, onWrite func(*Config, int)) (int, error) {
	off := headerSize
	if n := len(c.caps); n > 0 {
		last := c.caps[n-1]
		off = (last.off + last.size + capAlign - 1) &^ (capAlign - 1)
	}
	size := capHeaderSize + len(body)
	if off+size > ConfigSize {
		return 0, fmt.Errorf("capability %#x of %d bytes at %#x: %w", id, size, off, ErrNoConfigSpace)
	}
	c.regs[off+CapOffID] = id
	copy(c.regs[off+capHeaderSize:], body)
	copy(c.wmask[off+capHeaderSize:], wmask)
	if n := len(c.caps); n > 0 {
		c.regs[c.caps[n-1].off+CapOffNext] = byte(off)
	} else {
		c.regs[RegCapabilitiesPtr] = byte(off)
		c.put16(RegStatus, c.reg16(RegStatus)|StatusCapList)
	}
	c.caps = append(c.caps, capability{off: off, size: size, onWrite: onWrite})
	return off, nil
}

// capsWritten runs the hooks of the capabilities [reg, reg+n) overlaps. A
// write that wraps past 2^64 stored nothing, and reg is then far above any
// capability, so the wrapped end does not matter.
func (c *Config) capsWritten(reg uint64, n int) {
	for _, cp := range c.caps {
		if cp.onWrite == nil {
			continue
		}
		if reg < uint64(cp.off+cp.size) && reg+uint64(n) > uint64(cp.off) {
			cp.onWrite(c, cp.off)
		}
	}
}
