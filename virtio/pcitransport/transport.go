package pcitransport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/vmm-dev/vmm/devices/pci"
	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/virtio"
)

// Options wires a Transport to the VMM. Nil callbacks do nothing.
type Options struct {
	// BAR0Addr is BAR0's address at reset (naturally aligned, below 4 GiB;
	// see BARSize); 0 leaves it for the guest to assign.
	BAR0Addr uint64
	// SubsystemID overrides the PCI Subsystem ID; 0 means the PCI device
	// ID, which is what §4.1.2.1 asks of non-transitional devices (0x40 or
	// higher).
	SubsystemID uint16

	// OnNotify is called when the driver notifies queue q through an
	// access that reached the transport (no ioeventfd caught it). It runs
	// on the vCPU thread with no lock held; the VMM should hand q to the
	// device goroutine, which calls ProcessQueue.
	OnNotify func(q int)
	// OnMSI delivers MSI-X vector's message, data written to addr. It runs
	// with the transport's and the MSI-X table's locks held, on whichever
	// thread raised the interrupt: it must not call back into the
	// Transport.
	OnMSI func(vector int, addr uint64, data uint32)
	// OnINTx sets the level of INTA# while MSI-X is disabled. It runs with
	// the transport's lock held and must not call back into the Transport.
	OnINTx func(level bool)
}

// queueRegs is what the driver programmed for one queue through the common
// configuration, kept apart from the virtio.Queue that the device owns.
type queueRegs struct {
	size                 uint16
	vector               uint16
	desc, driver, device uint64
	enabled              bool
}

// Transport is one virtio device on the PCI bus (virtio 1.2 §4.1): its
// configuration space, with the virtio capabilities and MSI-X, and BAR0,
// holding the common configuration, ISR status, device configuration,
// notify registers and the MSI-X table and PBA.
//
// Locks: devMu is taken before mu; mu before the Config's and the MSIX's
// own locks. Device callbacks (Activate, Reset, Notify) run with devMu
// held and mu released, so a device may raise interrupts from them.
type Transport struct {
	dev  virtio.Device
	mem  *guestmem.Memory
	opts Options
	cfg  *pci.Config
	msix *pci.MSIX

	barSize   uint64
	pbaOffset uint64
	pciCfgCap uint64 // config-space offset of the VIRTIO_PCI_CAP_PCI_CFG capability

	// devMu serialises the device's callbacks and guards queues and
	// active: the device goroutine holds it in ProcessQueue, the vCPU
	// thread while a status write activates or resets the device.
	devMu  sync.Mutex
	queues []*virtio.Queue
	active bool // Activate succeeded and no reset since; written under mu too

	mu           sync.Mutex
	offered      uint64 // device_feature, all 64 bits
	status       uint8
	devFeatSel   uint32
	drvFeatSel   uint32
	drvFeatures  uint64
	configVector uint16
	generation   uint8
	queueSel     uint16
	qregs        []queueRegs
	isr          uint8
	intx         bool // INTA# asserted
}

// New builds the PCI function for dev, whose queues live in mem.
func New(dev virtio.Device, mem *guestmem.Memory, opts Options) (*Transport, error) {
	maxSizes := dev.QueueMaxSizes()
	if len(maxSizes) > MaxQueues {
		return nil, fmt.Errorf("virtio-pci: %d queues, at most %d", len(maxSizes), MaxQueues)
	}
	if mem == nil {
		return nil, errors.New("virtio-pci: nil guest memory")
	}
	t := &Transport{dev: dev, mem: mem, opts: opts}
	for i, n := range maxSizes {
		q, err := virtio.NewQueue(n)
		if err != nil {
			return nil, fmt.Errorf("virtio-pci: queue %d: %w", i, err)
		}
		t.queues = append(t.queues, q)
	}
	t.qregs = make([]queueRegs, len(maxSizes))
	t.offered = dev.Features()&^reservedFeatures | transportFeatures
	t.resetRegs()

	var err error
	if t.msix, err = pci.NewMSIX(len(maxSizes)+1, t.fireMSI); err != nil {
		return nil, fmt.Errorf("virtio-pci: %w", err)
	}
	t.pbaOffset = msixTableOff + alignUp(t.msix.TableSize(), pageSize)
	t.barSize = nextPow2(t.pbaOffset + alignUp(t.msix.PBASize(), pageSize))
	if err := t.buildConfig(); err != nil {
		return nil, fmt.Errorf("virtio-pci: %w", err)
	}
	return t, nil
}

// buildConfig creates the configuration space: identity, BAR0, the virtio
// capabilities (§4.1.4) and MSI-X.
func (t *Transport) buildConfig() error {
	id := t.dev.ID()
	devID := uint16(DeviceIDBase + id)
	sub := t.opts.SubsystemID
	if sub == 0 {
		sub = devID
	}
	t.cfg = pci.NewConfig(pci.Header{
		VendorID: VendorID, DeviceID: devID, RevisionID: RevisionID, ClassCode: classFor(id),
		SubsystemVendorID: VendorID, SubsystemID: sub, InterruptPin: interruptPinA,
	})
	if err := t.cfg.SetBAR(bar0Index, pci.BAR{Kind: pci.BARMem32, Size: t.barSize, Addr: t.opts.BAR0Addr}); err != nil {
		return err
	}
	caps := []struct {
		cfgType     byte
		off, length uint32
	}{
		{capCommonCfg, commonOffset, commonCfgLen},
		{capNotifyCfg, notifyOffset, uint32(len(t.qregs)) * NotifyOffMultiplier},
		{capISRCfg, isrOffset, isrLen},
		{capDeviceCfg, deviceOffset, deviceCfgSize},
	}
	for _, c := range caps {
		body := capBody(c.cfgType, bar0Index, c.off, c.length)
		if c.cfgType == capNotifyCfg {
			body = binary.LittleEndian.AppendUint32(body, NotifyOffMultiplier)
		}
		if _, err := t.cfg.AddVendorCapability(body, nil); err != nil {
			return err
		}
	}
	if err := t.addPCICfgCap(); err != nil {
		return err
	}
	_, err := t.cfg.AddMSIXCapability(t.msix, bar0Index, msixTableOff, bar0Index, uint32(t.pbaOffset))
	return err
}

// capBody is struct virtio_pci_cap after cap_len.
func capBody(cfgType, bar byte, off, length uint32) []byte {
	b := make([]byte, capBodySize)
	b[capOffCfgType-capHeaderSize] = cfgType
	b[capOffBAR-capHeaderSize] = bar
	binary.LittleEndian.PutUint32(b[capOffOffset-capHeaderSize:], off)
	binary.LittleEndian.PutUint32(b[capOffLength-capHeaderSize:], length)
	return b
}

// addPCICfgCap adds the VIRTIO_PCI_CAP_PCI_CFG capability (§4.1.4.9),
// whose bar, offset and length the driver writes to choose a window into
// the BARs that pci_cfg_data then reads and writes.
func (t *Transport) addPCICfgCap() error {
	body := append(capBody(capPCICfg, 0, 0, 0), make([]byte, pciCfgDataLen)...)
	wmask := make([]byte, len(body))
	wmask[capOffBAR-capHeaderSize] = 0xFF
	for i := range capOffPCICfgData - capOffOffset { // offset and length
		wmask[capOffOffset-capHeaderSize+i] = 0xFF
	}
	off, err := t.cfg.AddVendorCapability(body, wmask)
	t.pciCfgCap = uint64(off)
	return err
}

// Config is the function's configuration space, for OnBARChange and
// BARMapping; the bus should reach it through the Transport.
func (t *Transport) Config() *pci.Config { return t.cfg }

// MSIX is the function's MSI-X table.
func (t *Transport) MSIX() *pci.MSIX { return t.msix }

// BARSize is the size of BAR0, a 32-bit memory BAR.
func (t *Transport) BARSize() uint64 { return t.barSize }

// NumQueues is the number of virtqueues.
func (t *Transport) NumQueues() int { return len(t.qregs) }

// NotifyAddr is the offset in BAR0 of queue q's notify register, where the
// VMM may attach an ioeventfd (2-byte writes). q must be in [0, NumQueues).
func (t *Transport) NotifyAddr(q int) uint64 {
	return notifyOffset + uint64(q)*NotifyOffMultiplier
}

// ReadConfig implements pci.Function.
func (t *Transport) ReadConfig(reg uint64, data []byte) {
	if bar, off, ok := t.pciCfgWindow(reg, len(data)); ok {
		clear(data)
		if bar == bar0Index {
			t.BAR0().Read(off, data)
		}
		return
	}
	t.cfg.ReadConfig(reg, data)
}

// WriteConfig implements pci.Function.
func (t *Transport) WriteConfig(reg uint64, data []byte) {
	if bar, off, ok := t.pciCfgWindow(reg, len(data)); ok {
		if bar == bar0Index {
			t.BAR0().Write(off, data)
		}
		return
	}
	t.cfg.WriteConfig(reg, data)
}

// pciCfgWindow reports whether an access of n bytes at reg is to
// pci_cfg_data and, if so, the BAR and offset it reaches: the access must
// start at pci_cfg_data and be as wide as the capability's length, 1, 2
// or 4 (§4.1.4.9.1). Other accesses to the data bytes read 0.
func (t *Transport) pciCfgWindow(reg uint64, n int) (bar byte, off uint64, ok bool) {
	data := t.pciCfgCap + capOffPCICfgData
	if reg+uint64(n) <= data || reg >= data+pciCfgDataLen {
		return 0, 0, false
	}
	var c [capOffPCICfgData]byte
	t.cfg.ReadConfig(t.pciCfgCap, c[:])
	length := binary.LittleEndian.Uint32(c[capOffLength:])
	if reg != data || uint32(n) != length || length != 1 && length != 2 && length != 4 {
		return noBAR, 0, true
	}
	return c[capOffBAR], uint64(binary.LittleEndian.Uint32(c[capOffOffset:])), true
}

// noBAR names no BAR: an access through pci_cfg_data that reaches nothing.
const noBAR = pci.NumBARs

func alignUp(n, a uint64) uint64 { return (n + a - 1) &^ (a - 1) }

func nextPow2(n uint64) uint64 {
	p := uint64(1)
	for p < n {
		p <<= 1
	}
	return p
}
