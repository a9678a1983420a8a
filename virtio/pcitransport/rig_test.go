package pcitransport_test

import (
	"encoding/binary"
	"testing"

	"github.com/vmm-dev/vmm/devices/pci"
	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/virtio"
	"github.com/vmm-dev/vmm/virtio/pcitransport"
	"github.com/vmm-dev/vmm/virtio/virtiotest"
)

// Device-specific feature bits the fake device offers.
const (
	featA uint64 = 1 << 0
	featB uint64 = 1 << 5
)

// Test geometry: queue 0 is the virtiotest driver's, at the start of
// memory; queue 1's rings sit at q1Base, clear of the driver's heap use.
const (
	memSize  = 1 << 20
	q0Size   = 64
	q0Max    = 256
	q1Max    = 16
	q1Base   = 0x80000
	q1Driver = q1Base + 0x1000
	q1Device = q1Base + 0x2000
)

type activation struct {
	features uint64
	queues   []*virtio.Queue
	irq      virtio.Interrupt
}

// fakeDev is a virtio device with two queues and an 8-byte config space.
// Notify returns every available chain as used with nothing written and
// signals the queue.
type fakeDev struct {
	mem         *guestmem.Memory
	config      [8]byte
	activations []activation
	notifies    []int
	resets      int
	activateErr error
}

func (d *fakeDev) ID() uint16              { return virtio.IDBlock }
func (d *fakeDev) Features() uint64        { return featA | featB | virtio.FeatureRingPacked }
func (d *fakeDev) QueueMaxSizes() []uint16 { return []uint16{q0Max, q1Max} }
func (d *fakeDev) Reset()                  { d.resets++ }

func (d *fakeDev) ReadConfig(off uint64, data []byte) {
	for i := range data {
		data[i] = 0
		if o := off + uint64(i); o < uint64(len(d.config)) {
			data[i] = d.config[o]
		}
	}
}

func (d *fakeDev) WriteConfig(off uint64, data []byte) {
	for i, b := range data {
		if o := off + uint64(i); o < uint64(len(d.config)) {
			d.config[o] = b
		}
	}
}

func (d *fakeDev) Activate(mem *guestmem.Memory, features uint64, queues []*virtio.Queue, irq virtio.Interrupt) error {
	d.mem = mem
	d.activations = append(d.activations, activation{features, queues, irq})
	return d.activateErr
}

func (d *fakeDev) Notify(q int) error {
	d.notifies = append(d.notifies, q)
	queue := d.activations[len(d.activations)-1].queues[q]
	for {
		c, err := queue.Pop(d.mem)
		if err != nil {
			return err
		}
		if c == nil {
			break
		}
		if err := queue.AddUsed(d.mem, c.Head(), 0); err != nil {
			return err
		}
	}
	if ok, err := queue.NeedsNotification(d.mem); err != nil || !ok {
		return err
	}
	return d.activations[len(d.activations)-1].irq.Signal(q)
}

type msi struct {
	vector int
	addr   uint64
	data   uint32
}

// rig is a transport around a fakeDev, recording what it sends the VMM.
type rig struct {
	t        *testing.T
	tr       *pcitransport.Transport
	dev      *fakeDev
	mem      *guestmem.Memory
	drv      *virtiotest.Driver // queue 0
	notified []int
	msis     []msi
	intx     []bool
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{t: t, dev: &fakeDev{}, mem: guestmem.NewTest(memSize)}
	var err error
	r.tr, err = pcitransport.New(r.dev, r.mem, pcitransport.Options{
		BAR0Addr: 0xC000_0000,
		OnNotify: func(q int) { r.notified = append(r.notified, q) },
		OnMSI:    func(v int, a uint64, d uint32) { r.msis = append(r.msis, msi{v, a, d}) },
		OnINTx:   func(level bool) { r.intx = append(r.intx, level) },
	})
	if err != nil {
		t.Fatal(err)
	}
	r.drv = virtiotest.New(t, r.mem, q0Size)
	return r
}

// Configuration space accessors, as the bus would call them.
func (r *rig) cfg8(off uint64) uint8   { return uint8(r.cfgRead(off, 1)) }
func (r *rig) cfg16(off uint64) uint16 { return uint16(r.cfgRead(off, 2)) }
func (r *rig) cfg32(off uint64) uint32 { return uint32(r.cfgRead(off, 4)) }

func (r *rig) cfgRead(off uint64, n int) uint64 {
	b := make([]byte, 8)
	r.tr.ReadConfig(off, b[:n])
	return binary.LittleEndian.Uint64(b)
}

func (r *rig) cfgWrite(off uint64, n int, v uint64) {
	b := binary.LittleEndian.AppendUint64(nil, v)
	r.tr.WriteConfig(off, b[:n])
}

// BAR0 accessors, as the MMIO bus would call them.
func (r *rig) read(off uint64, n int) uint64 {
	b := make([]byte, 8)
	r.tr.BAR0().Read(off, b[:n])
	return binary.LittleEndian.Uint64(b)
}

func (r *rig) write(off uint64, n int, v uint64) {
	b := binary.LittleEndian.AppendUint64(nil, v)
	r.tr.BAR0().Write(off, b[:n])
}

// virtioCap is a struct virtio_pci_cap as a driver reads it.
type virtioCap struct {
	at               uint64 // offset in configuration space
	bar              uint8
	offset, length   uint32
	notifyMultiplier uint32 // NOTIFY only
}

// caps walks the capability list the way Linux's virtio_pci_find_capability
// does and returns the virtio capabilities by cfg_type, and the MSI-X
// capability's offset.
func (r *rig) caps() (map[uint8]virtioCap, uint64) {
	r.t.Helper()
	if r.cfg16(pci.RegStatus)&pci.StatusCapList == 0 {
		r.t.Fatal("no capability list")
	}
	found := map[uint8]virtioCap{}
	var msix uint64
	for pos, n := uint64(r.cfg8(pci.RegCapabilitiesPtr)&pci.CapPtrMask), 0; pos != 0; n++ {
		if n > 48 {
			r.t.Fatal("capability list loops")
		}
		switch r.cfg8(pos) {
		case pci.CapIDVendor:
			typ := r.cfg8(pos + 3)
			if _, dup := found[typ]; !dup {
				found[typ] = virtioCap{at: pos, bar: r.cfg8(pos + 4), offset: r.cfg32(pos + 8),
					length: r.cfg32(pos + 12), notifyMultiplier: r.cfg32(pos + 16)}
			}
		case pci.CapIDMSIX:
			msix = pos
		}
		pos = uint64(r.cfg8(pos+1) & pci.CapPtrMask)
	}
	return found, msix
}

// Common configuration register offsets, written out as a driver has them.
const (
	cDevFeatSel  = 0x00
	cDevFeat     = 0x04
	cDrvFeatSel  = 0x08
	cDrvFeat     = 0x0C
	cConfigVec   = 0x10
	cNumQueues   = 0x12
	cStatus      = 0x14
	cGeneration  = 0x15
	cQueueSel    = 0x16
	cQueueSize   = 0x18
	cQueueVec    = 0x1A
	cQueueEnable = 0x1C
	cNotifyOff   = 0x1E
	cQueueDesc   = 0x20
	cQueueDriver = 0x28
	cQueueDevice = 0x30
)

func (r *rig) status() uint8     { return uint8(r.read(cStatus, 1)) }
func (r *rig) setStatus(s uint8) { r.write(cStatus, 1, uint64(s)) }
func (r *rig) addStatus(s uint8) { r.setStatus(r.status() | s) }

func (r *rig) deviceFeatures() uint64 {
	r.write(cDevFeatSel, 4, 0)
	lo := r.read(cDevFeat, 4)
	r.write(cDevFeatSel, 4, 1)
	return lo | r.read(cDevFeat, 4)<<32
}

func (r *rig) setDriverFeatures(f uint64) {
	r.write(cDrvFeatSel, 4, 0)
	r.write(cDrvFeat, 4, f&0xFFFF_FFFF)
	r.write(cDrvFeatSel, 4, 1)
	r.write(cDrvFeat, 4, f>>32)
}

// negotiate runs reset, ACKNOWLEDGE, DRIVER and the feature handshake and
// returns the status read back after setting FEATURES_OK.
func (r *rig) negotiate(features uint64) uint8 {
	r.setStatus(0)
	r.addStatus(pcitransport.StatusAcknowledge)
	r.addStatus(pcitransport.StatusDriver)
	r.setDriverFeatures(features)
	r.addStatus(pcitransport.StatusFeaturesOK)
	return r.status()
}

// setQueue programs queue q as Linux's vp_modern_setup_vq does: size,
// 64-bit addresses as two 32-bit halves, then enable.
func (r *rig) setQueue(q uint16, c virtio.Config) {
	r.write(cQueueSel, 2, uint64(q))
	r.write(cQueueSize, 2, uint64(c.Size))
	for _, a := range []struct {
		off  uint64
		addr guestmem.GuestAddr
	}{{cQueueDesc, c.DescTable}, {cQueueDriver, c.AvailRing}, {cQueueDevice, c.UsedRing}} {
		r.write(a.off, 4, uint64(a.addr)&0xFFFF_FFFF)
		r.write(a.off+4, 4, uint64(a.addr)>>32)
	}
	r.write(cQueueEnable, 2, 1)
}

// q1Config is queue 1's configuration.
func q1Config() virtio.Config {
	return virtio.Config{Size: q1Max, DescTable: q1Base, AvailRing: q1Driver, UsedRing: q1Device}
}

// bringUp negotiates features, sets up both queues and sets DRIVER_OK.
func (r *rig) bringUp(features uint64) {
	r.t.Helper()
	if s := r.negotiate(features); s&pcitransport.StatusFeaturesOK == 0 {
		r.t.Fatalf("FEATURES_OK refused: status %#x", s)
	}
	r.setQueue(0, r.drv.Config(0))
	r.setQueue(1, q1Config())
	r.addStatus(pcitransport.StatusDriverOK)
}

// enableMSIX programs vector v of the table (unmasked) with a distinct
// message, then sets MSI-X Enable.
func (r *rig) enableMSIX(vectors int) {
	_, msixCap := r.caps()
	table := uint64(r.cfg32(msixCap+pci.MSIXOffTable) &^ pci.MSIXBIRMask)
	for v := range vectors {
		e := table + uint64(v*pci.MSIXEntrySize)
		r.write(e+pci.MSIXOffAddrLo, 4, 0xFEE0_0000|uint64(v)<<12)
		r.write(e+pci.MSIXOffAddrHi, 4, 0)
		r.write(e+pci.MSIXOffData, 4, 0x40+uint64(v))
		r.write(e+pci.MSIXOffVectorCtl, 4, 0)
	}
	r.cfgWrite(msixCap+pci.MSIXOffControl, 2, pci.MSIXCtlEnable)
}
