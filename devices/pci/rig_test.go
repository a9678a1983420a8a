package pci

import (
	"encoding/binary"
	"testing"
)

// Layout of the test device at 00:01.0: BAR0 holds the MSI-X table and PBA.
const (
	rigDev        = 1
	rigVectors    = 4
	rigTableOff   = 0
	rigPBAOff     = 0x800
	rigBAR0Size   = 0x1000
	rigBAR0Addr   = 0xC000_0000
	rigIOSize     = 32
	rigIOAddr     = 0xC000
	rigBAR2Size   = 0x4000
	rigBAR2Addr   = 0x1_0000_0000
	rigVendorBody = 13 // bytes after cap_len, so the capability is 16 bytes
)

type fired struct {
	vector int
	msg    Message
}

// rig is a bus with the host bridge and one device with three BARs, a
// vendor capability with a writable body and an MSI-X capability.
type rig struct {
	bus     *Bus
	io      *ConfigIO
	ecam    *ECAM
	cfg     *Config
	msix    *MSIX
	fired   []fired
	changes []BARChange
	vndrOff uint8
	msixOff uint8
}

func newRig(t testing.TB) *rig {
	t.Helper()
	r := &rig{bus: NewBus()}
	r.io, r.ecam = NewConfigIO(r.bus), NewECAM(r.bus)
	r.cfg = NewConfig(Header{VendorID: 0x1AF4, DeviceID: 0x1041, RevisionID: 1, ClassCode: 0x020000,
		SubsystemVendorID: 0x1AF4, SubsystemID: 0x1100, InterruptPin: 1})
	var err error
	if r.msix, err = NewMSIX(rigVectors, func(v int, m Message) { r.fired = append(r.fired, fired{v, m}) }); err != nil {
		t.Fatal(err)
	}
	must(t, r.cfg.SetBAR(0, BAR{Kind: BARMem32, Size: rigBAR0Size, Addr: rigBAR0Addr}))
	must(t, r.cfg.SetBAR(1, BAR{Kind: BARIO, Size: rigIOSize, Addr: rigIOAddr}))
	must(t, r.cfg.SetBAR(2, BAR{Kind: BARMem64, Size: rigBAR2Size, Prefetchable: true, Addr: rigBAR2Addr}))
	wmask := make([]byte, rigVendorBody)
	for i := 1; i < len(wmask); i++ {
		wmask[i] = 0xFF
	}
	if r.vndrOff, err = r.cfg.AddVendorCapability(make([]byte, rigVendorBody), wmask); err != nil {
		t.Fatal(err)
	}
	if r.msixOff, err = r.cfg.AddMSIXCapability(r.msix, 0, rigTableOff, 0, rigPBAOff); err != nil {
		t.Fatal(err)
	}
	r.cfg.OnBARChange(func(c BARChange) { r.changes = append(r.changes, c) })
	must(t, r.bus.AddAt(rigDev, r.cfg))
	return r
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// cfgAddr is the CONFIG_ADDRESS value for 00:dev.0, register reg.
func cfgAddr(dev int, reg uint64) uint32 {
	return cfgAddrEnable | uint32(dev)<<cfgAddrDevShift | uint32(reg)&cfgAddrRegMask
}

// read reads size bytes of 00:dev.0 at reg through 0xCF8/0xCFC.
func (r *rig) read(dev int, reg uint64, size int) uint32 {
	r.io.Write(configAddrPort, le32(cfgAddr(dev, reg)))
	data := make([]byte, size)
	r.io.Read(configDataPort+reg%dwordSize, data)
	return leN(data)
}

// write writes the low size bytes of v to 00:dev.0 at reg through 0xCF8/0xCFC.
func (r *rig) write(dev int, reg uint64, size int, v uint32) {
	r.io.Write(configAddrPort, le32(cfgAddr(dev, reg)))
	r.io.Write(configDataPort+reg%dwordSize, le32(v)[:size])
}

// bar0 dispatches an access to BAR0 as a transport would: table, then PBA.
func (r *rig) bar0(write bool, off uint64, data []byte) {
	switch {
	case off >= rigPBAOff && write:
		r.msix.WritePBA(off-rigPBAOff, data)
	case off >= rigPBAOff:
		r.msix.ReadPBA(off-rigPBAOff, data)
	case write:
		r.msix.WriteTable(off-rigTableOff, data)
	default:
		r.msix.ReadTable(off-rigTableOff, data)
	}
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

// leN decodes up to 4 little-endian bytes.
func leN(data []byte) uint32 {
	var v uint32
	for i, b := range data[:min(len(data), 4)] {
		v |= uint32(b) << (8 * i)
	}
	return v
}
