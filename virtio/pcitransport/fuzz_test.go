package pcitransport_test

import (
	"encoding/binary"
	"testing"

	"github.com/vmm-dev/vmm/devices/pci"
	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/virtio"
	"github.com/vmm-dev/vmm/virtio/pcitransport"
)

// fuzzRecord is the size of one fuzz program step: op, a, b, c, value.
const fuzzRecord = 8

// Fuzz program operations.
const (
	opBARWrite     = iota // BAR0 write at a|b<<8, width c%9
	opBARRead             // BAR0 read at a|b<<8, width c%9
	opConfigWrite         // configuration space write at a|(b&0xF)<<8, width c%9
	opConfigRead          // configuration space read
	opProcess             // ProcessQueue(a%3 - ...), as the device goroutine would
	opConfigChange        // ConfigChanged
	opMemWrite            // guest memory: 32-bit value at (a|b<<8|c<<16) % memSize
	numOps
)

// msixCapAt is where New places the MSI-X capability, after the five
// virtio capabilities; TestFuzzSeeds_ReachTheDevice checks it.
const msixCapAt = 0x98

type prog []byte

func (p *prog) add(op byte, off uint64, width int, v uint32) {
	*p = append(*p, op, byte(off), byte(off>>8), byte(width))
	*p = binary.LittleEndian.AppendUint32(*p, v)
}

// fuzzSeeds are a bring-up with MSI-X and a used buffer, and one with INTx
// and a hostile queue, written as programs.
func fuzzSeeds() []prog {
	var seeds []prog
	for _, msix := range []bool{true, false} {
		var p prog
		p.add(opConfigWrite, pci.RegCommand, 2, pci.CmdMemSpace|pci.CmdBusMaster)
		if msix {
			p.add(opBARWrite, 0x4000+pci.MSIXOffAddrLo+16, 4, 0xFEE0_0000)
			p.add(opBARWrite, 0x4000+pci.MSIXOffVectorCtl+16, 4, 0)
			p.add(opConfigWrite, msixCapAt+pci.MSIXOffControl, 2, pci.MSIXCtlEnable)
		}
		for _, s := range []uint32{0, 1, 3} {
			p.add(opBARWrite, cStatus, 1, s)
		}
		p.add(opBARWrite, cDrvFeatSel, 4, 1)
		p.add(opBARWrite, cDrvFeat, 4, 1) // VERSION_1
		p.add(opBARWrite, cStatus, 1, 11)
		p.add(opBARWrite, cQueueSize, 2, 16)
		p.add(opBARWrite, cQueueVec, 2, 1)
		p.add(opBARWrite, cQueueDriver, 4, 0x100)
		p.add(opBARWrite, cQueueDevice, 4, 0x200)
		if !msix {
			p.add(opBARWrite, cQueueDesc, 4, 0x3)
		}
		p.add(opBARWrite, cQueueEnable, 2, 1)
		p.add(opBARWrite, cStatus, 1, 15)
		p.add(opMemWrite, 0x8, 0, 1)       // descriptor 0: 1 byte at 0
		p.add(opMemWrite, 0x100, 0, 1<<16) // avail.flags 0, avail.idx 1
		p.add(opBARWrite, 0x3000, 2, 0)
		p.add(opProcess, 1, 0, 0) // queue 0
		p.add(opBARRead, 0x1000, 1, 0)
		p.add(opBARRead, 0x5000, 8, 0)
		seeds = append(seeds, p)
	}
	return seeds
}

// FuzzTransport drives BAR0 and the configuration space with arbitrary
// guest accesses while the device processes its queues. Nothing may panic,
// DRIVER_OK never stands without FEATURES_OK, and every activation has
// VERSION_1 and only offered features.
func FuzzTransport(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		r := newRig(t)
		offered := r.deviceFeatures()
		for ; len(p) >= fuzzRecord; p = p[fuzzRecord:] {
			r.step(p[:fuzzRecord])
			if s := r.status(); s&pcitransport.StatusDriverOK != 0 && s&pcitransport.StatusFeaturesOK == 0 {
				t.Fatalf("status %#x: DRIVER_OK without FEATURES_OK", s)
			}
		}
		for _, a := range r.dev.activations {
			if a.features&virtio.FeatureVersion1 == 0 || a.features&^offered != 0 {
				t.Fatalf("activated with features %#x, offered %#x", a.features, offered)
			}
		}
	})
}

func TestFuzzSeeds_ReachTheDevice(t *testing.T) {
	for i, s := range fuzzSeeds() {
		r := newRig(t)
		if _, at := r.caps(); at != msixCapAt {
			t.Fatalf("MSI-X capability at %#x, seeds assume %#x", at, msixCapAt)
		}
		for p := s; len(p) >= fuzzRecord; p = p[fuzzRecord:] {
			r.step(p[:fuzzRecord])
		}
		msix := i == 0
		if msix && (len(r.dev.activations) != 1 || len(r.msis) != 1) {
			t.Errorf("MSI-X seed: %d activations, MSIs %+v; want one each", len(r.dev.activations), r.msis)
		}
		if !msix && r.status()&pcitransport.StatusDeviceNeedsReset == 0 {
			t.Errorf("INTx seed: status %#x, want DEVICE_NEEDS_RESET", r.status())
		}
	}
}

func (r *rig) step(rec []byte) {
	op, a, b, c := rec[0]%numOps, uint64(rec[1]), uint64(rec[2]), rec[3]
	v := uint64(binary.LittleEndian.Uint32(rec[4:]))
	buf := binary.LittleEndian.AppendUint64(nil, v|v<<32)[:c%9]
	switch op {
	case opBARWrite:
		r.tr.BAR0().Write(a|b<<8, buf)
	case opBARRead:
		r.tr.BAR0().Read(a|b<<8, buf)
	case opConfigWrite:
		r.tr.WriteConfig(a|(b&0xF)<<8, buf)
	case opConfigRead:
		r.tr.ReadConfig(a|(b&0xF)<<8, buf)
	case opProcess:
		_ = r.tr.ProcessQueue(int(a%4) - 1)
	case opConfigChange:
		r.tr.ConfigChanged()
	case opMemWrite:
		addr := guestmem.GuestAddr((a | b<<8 | uint64(c)<<16) % (memSize - 4))
		_ = r.mem.WriteUint32(addr, uint32(v))
	}
}
