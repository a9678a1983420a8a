package pci

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

// Function is one PCI function's configuration space as the bus sees it:
// accesses at a byte offset (reg) into the space, 1 to 8 bytes wide, with
// reg below 4096 (ECAM reaches past the first 256 bytes, where a
// conventional function reads 0). Config implements it; a device model may
// wrap a Config to add side effects.
type Function interface {
	ReadConfig(reg uint64, data []byte)
	WriteConfig(reg uint64, data []byte)
}

// Geometry of a bus (§3.2.2.3.2): 5 bits of device number, 3 of function.
const (
	NumDevices   = 32
	NumFunctions = 8
)

// Identity of the host bridge at 00:00.0: the ID Intel reserves for a
// virtual PCIe host bridge, as other VMMs present it.
const (
	HostBridgeVendorID = 0x8086
	HostBridgeDeviceID = 0x0D57
	ClassHostBridge    = 0x060000 // base class 06h (bridge), subclass 00h (host)
)

// Errors from Bus.Add and Bus.AddAt.
var (
	ErrBusFull    = errors.New("no free device number on bus 0")
	ErrSlotInUse  = errors.New("device number in use")
	ErrNoSuchSlot = errors.New("no such device number")
)

// allOnes is what a read returns where no function answers: the host bridge
// ends the transaction with Master-Abort and returns all ones (§6.1).
const allOnes = 0xFF

// Bus is PCI bus 0 under the host bridge: up to 32 devices of one function
// each, the host bridge itself at device 0.
type Bus struct {
	mu   sync.RWMutex // guards devs; adds happen at setup, lookups on every access
	devs [NumDevices]Function
}

// NewBus returns a bus holding only the host bridge at 00:00.0.
func NewBus() *Bus {
	b := &Bus{}
	b.devs[0] = NewConfig(Header{
		VendorID:  HostBridgeVendorID,
		DeviceID:  HostBridgeDeviceID,
		ClassCode: ClassHostBridge,
	})
	return b
}

// Add places f as function 0 of the lowest free device number and returns
// that number.
func (b *Bus) Add(f Function) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for dev, d := range b.devs {
		if d == nil {
			b.devs[dev] = f
			return dev, nil
		}
	}
	return 0, ErrBusFull
}

// AddAt places f as function 0 of device number dev.
func (b *Bus) AddAt(dev int, f Function) error {
	if dev < 0 || dev >= NumDevices {
		return fmt.Errorf("device %d: %w", dev, ErrNoSuchSlot)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.devs[dev] != nil {
		return fmt.Errorf("device %d: %w", dev, ErrSlotInUse)
	}
	b.devs[dev] = f
	return nil
}

// lookup returns the function at bus:dev.fn, or nil when none answers.
func (b *Bus) lookup(bus, dev, fn uint64) Function {
	if bus != 0 || dev >= NumDevices || fn != 0 {
		return nil
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.devs[dev]
}

// readConfig reads from bus:dev.fn at reg, all ones where nothing answers.
func (b *Bus) readConfig(bus, dev, fn, reg uint64, data []byte) {
	f := b.lookup(bus, dev, fn)
	if f == nil {
		fillOnes(data)
		return
	}
	f.ReadConfig(reg, data)
}

// writeConfig writes to bus:dev.fn at reg; it is dropped where nothing answers.
func (b *Bus) writeConfig(bus, dev, fn, reg uint64, data []byte) {
	if f := b.lookup(bus, dev, fn); f != nil {
		f.WriteConfig(reg, data)
	}
}

// Configuration mechanism #1 (§3.2.2.3.2): CONFIG_ADDRESS at 0xCF8, a DWORD
// register, and CONFIG_DATA at 0xCFC–0xCFF, a window onto the DWORD it
// selects.
const (
	ConfigIOBase = 0xCF8
	ConfigIOSize = 8

	configAddrPort = 0 // CONFIG_ADDRESS, offset from ConfigIOBase
	configDataPort = 4 // CONFIG_DATA
	dwordSize      = 4

	cfgAddrEnable   = 1 << 31 // bit 31: the access is a configuration cycle
	cfgAddrBusShift = 16      // bits 23:16: bus number
	cfgAddrDevShift = 11      // bits 15:11: device number
	cfgAddrFnShift  = 8       // bits 10:8: function number
	cfgAddrBusMask  = 0xFF
	cfgAddrDevMask  = 0x1F
	cfgAddrFnMask   = 0x7
	cfgAddrRegMask  = 0xFC // bits 7:2: DWORD register number
	// Bits 30:24 are reserved and bits 1:0 are 00b; both read back 0.
	cfgAddrWritable = cfgAddrEnable | 0x00FFFFFC
)

// ConfigIO is the port device for configuration mechanism #1, to be placed
// at ConfigIOBase for ConfigIOSize ports.
type ConfigIO struct {
	bus *Bus

	mu   sync.Mutex
	addr uint32 // CONFIG_ADDRESS
}

// NewConfigIO returns the port device for bus.
func NewConfigIO(bus *Bus) *ConfigIO { return &ConfigIO{bus: bus} }

// Read implements a port read at offset from ConfigIOBase.
func (c *ConfigIO) Read(offset uint64, data []byte) {
	if offset < configDataPort {
		fillOnes(data)
		if offset == configAddrPort && len(data) == dwordSize {
			c.mu.Lock()
			binary.LittleEndian.PutUint32(data, c.addr)
			c.mu.Unlock()
		}
		return
	}
	bus, dev, fn, reg, n, ok := c.target(offset, len(data))
	if !ok {
		fillOnes(data)
		return
	}
	fillOnes(data[n:])
	c.bus.readConfig(bus, dev, fn, reg, data[:n])
}

// Write implements a port write at offset from ConfigIOBase.
func (c *ConfigIO) Write(offset uint64, data []byte) {
	if offset < configDataPort {
		// Only a DWORD write is CONFIG_ADDRESS; byte and word writes pass
		// through to the PCI bus as plain I/O, where nothing claims them.
		if offset == configAddrPort && len(data) == dwordSize {
			c.mu.Lock()
			c.addr = binary.LittleEndian.Uint32(data) & cfgAddrWritable
			c.mu.Unlock()
		}
		return
	}
	bus, dev, fn, reg, n, ok := c.target(offset, len(data))
	if ok {
		c.bus.writeConfig(bus, dev, fn, reg, data[:n])
	}
}

// target decodes CONFIG_ADDRESS for a CONFIG_DATA access of size bytes at
// offset: the function, the register (the selected DWORD plus the byte lane)
// and how many of the bytes fall inside CONFIG_DATA.
func (c *ConfigIO) target(offset uint64, size int) (bus, dev, fn, reg uint64, n int, ok bool) {
	if offset >= ConfigIOSize {
		return 0, 0, 0, 0, 0, false
	}
	c.mu.Lock()
	a := uint64(c.addr)
	c.mu.Unlock()
	if a&cfgAddrEnable == 0 {
		return 0, 0, 0, 0, 0, false
	}
	lane := offset - configDataPort
	n = min(size, int(dwordSize-lane))
	bus = a >> cfgAddrBusShift & cfgAddrBusMask
	dev = a >> cfgAddrDevShift & cfgAddrDevMask
	fn = a >> cfgAddrFnShift & cfgAddrFnMask
	return bus, dev, fn, a&cfgAddrRegMask + lane, n, true
}

func fillOnes(data []byte) {
	for i := range data {
		data[i] = allOnes
	}
}
