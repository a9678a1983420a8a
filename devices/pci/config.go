package pci

import (
	"encoding/binary"
	"sync"
)

// ConfigSize is the size of a conventional PCI configuration space.
const ConfigSize = 256

// Type-0 configuration header offsets (PCI Local Bus 3.0 §6.1, figure 6-1).
const (
	RegVendorID          = 0x00 // 16 bits
	RegDeviceID          = 0x02 // 16 bits
	RegCommand           = 0x04 // 16 bits (§6.2.2)
	RegStatus            = 0x06 // 16 bits (§6.2.3)
	RegRevisionID        = 0x08
	RegClassCode         = 0x09 // 24 bits: programming interface, subclass, base class
	RegCacheLineSize     = 0x0C
	RegLatencyTimer      = 0x0D
	RegHeaderType        = 0x0E
	RegBIST              = 0x0F
	RegBAR0              = 0x10 // six 32-bit BARs, RegBAR0 + 4*i (§6.2.5.1)
	RegBAR5              = 0x24
	RegCardbusCIS        = 0x28
	RegSubsystemVendorID = 0x2C // 16 bits
	RegSubsystemID       = 0x2E // 16 bits
	RegExpansionROM      = 0x30
	RegCapabilitiesPtr   = 0x34 // offset of the first capability (§6.7)
	RegInterruptLine     = 0x3C // scratch for software; no effect on the device
	RegInterruptPin      = 0x3D // 1–4 for INTA#–INTD#, 0 for none
	RegMinGnt            = 0x3E
	RegMaxLat            = 0x3F

	headerSize = 0x40 // capabilities live in [headerSize, ConfigSize)
)

// COMMAND bits (§6.2.2). The others are hardwired to 0, as the spec allows
// for features a device lacks: a virtual function has no parity, SERR# or
// special cycles.
const (
	CmdIOSpace     = 1 << 0  // decode the function's I/O BARs
	CmdMemSpace    = 1 << 1  // decode the function's memory BARs
	CmdBusMaster   = 1 << 2  // the function may master the bus (DMA, MSI)
	CmdINTxDisable = 1 << 10 // the function must not assert INTx#

	cmdWritable = CmdIOSpace | CmdMemSpace | CmdBusMaster | CmdINTxDisable
)

// STATUS bits (§6.2.3). Both are read-only; the error bits (RW1C) stay 0
// because a virtual function never signals errors.
const (
	StatusINTx    = 1 << 3 // INTx# asserted
	StatusCapList = 1 << 4 // RegCapabilitiesPtr points at a capability list
)

// HEADER_TYPE values (§6.2.1).
const (
	HeaderTypeNormal = 0x00 // type 0: an endpoint
	HeaderMultiFunc  = 0x80 // the device has functions other than 0
)

// Writable bytes of the header that are neither COMMAND nor a BAR.
const (
	cacheLineWritable = 0xFF // §6.2.4: software sets the cache line size
	intLineWritable   = 0xFF
)

// Header identifies a function. All of it is read-only to the guest.
type Header struct {
	VendorID          uint16
	DeviceID          uint16
	RevisionID        uint8
	ClassCode         uint32 // base class<<16 | subclass<<8 | programming interface
	SubsystemVendorID uint16
	SubsystemID       uint16
	InterruptPin      uint8 // 0 for none, 1–4 for INTA#–INTD#
}

// Config is a type-0 configuration space: 256 bytes and a write mask per
// byte, so that read-only fields ignore the guest's writes (§6.1). It serves
// the guest through ReadConfig and WriteConfig and tells its owner where the
// guest programs the BARs (see OnBARChange).
type Config struct {
	mu    sync.Mutex
	regs  [ConfigSize]byte
	wmask [ConfigSize]byte // bits the guest may write
	bars  [NumBARs]barState
	caps  []capability // in list order
	// onBAR is called without mu held; see OnBARChange.
	onBAR func(BARChange)
}

// NewConfig returns a configuration space with the given identity, every BAR
// unused, COMMAND clear and no capabilities.
func NewConfig(h Header) *Config {
	c := &Config{}
	c.put16(RegVendorID, h.VendorID)
	c.put16(RegDeviceID, h.DeviceID)
	c.regs[RegRevisionID] = h.RevisionID
	c.regs[RegClassCode] = byte(h.ClassCode)
	c.regs[RegClassCode+1] = byte(h.ClassCode >> 8)
	c.regs[RegClassCode+2] = byte(h.ClassCode >> 16)
	c.regs[RegHeaderType] = HeaderTypeNormal
	c.put16(RegSubsystemVendorID, h.SubsystemVendorID)
	c.put16(RegSubsystemID, h.SubsystemID)
	c.regs[RegInterruptPin] = h.InterruptPin
	binary.LittleEndian.PutUint16(c.wmask[RegCommand:], cmdWritable)
	c.wmask[RegCacheLineSize] = cacheLineWritable
	c.wmask[RegInterruptLine] = intLineWritable
	return c
}

// ReadConfig reads len(data) bytes of the space at reg. Bytes past the end of
// the space (a PCIe extended space, which this function does not have) read 0.
func (c *Config) ReadConfig(reg uint64, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range data {
		data[i] = 0
		if off, ok := inRegion(reg, i, ConfigSize); ok {
			data[i] = c.regs[off]
		}
	}
}

// WriteConfig writes data at reg through the write mask, then reports BAR
// changes to the OnBARChange callback, after releasing the lock.
func (c *Config) WriteConfig(reg uint64, data []byte) {
	c.mu.Lock()
	changes := c.write(reg, data)
	fn := c.onBAR
	c.mu.Unlock()
	if fn == nil {
		return
	}
	for _, ch := range changes {
		fn(ch)
	}
}

// write stores data through the mask, runs the hooks of the capabilities it
// touched and returns the BAR changes it caused.
func (c *Config) write(reg uint64, data []byte) []BARChange {
	decode := false
	for i, v := range data {
		off, ok := inRegion(reg, i, ConfigSize)
		if !ok {
			break
		}
		m := c.wmask[off]
		c.regs[off] = c.regs[off]&^m | v&m
		if off >= RegCommand && off < RegCommand+2 || off >= RegBAR0 && off < RegBAR5+4 {
			decode = true
		}
	}
	c.capsWritten(reg, len(data))
	if !decode {
		return nil
	}
	return c.updateMappings()
}

// SetINTxStatus sets STATUS's Interrupt Status bit: whether the function
// has an INTx interrupt pending, whatever COMMAND's Interrupt Disable says
// (§6.2.3), so a driver sharing a line can tell whether it is its.
func (c *Config) SetINTxStatus(pending bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.reg16(RegStatus) &^ StatusINTx
	if pending {
		st |= StatusINTx
	}
	c.put16(RegStatus, st)
}

// Command returns the COMMAND register; test it with the Cmd* bits.
func (c *Config) Command() uint16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reg16(RegCommand)
}

func (c *Config) reg16(off int) uint16 { return binary.LittleEndian.Uint16(c.regs[off:]) }
func (c *Config) reg32(off int) uint32 { return binary.LittleEndian.Uint32(c.regs[off:]) }
func (c *Config) put16(off int, v uint16) {
	binary.LittleEndian.PutUint16(c.regs[off:], v)
}
func (c *Config) put32(off int, v uint32) {
	binary.LittleEndian.PutUint32(c.regs[off:], v)
}
