package pci

import (
	"bytes"
	"testing"
)

// fuzzRecord is the size of a fuzz program record: op, a, b, c, value.
const fuzzRecord = 8

// Fuzz program operations.
const (
	opConfigAddr = iota // CONFIG_ADDRESS from parts: device a%4, register b, control c
	opPortWrite         // any ConfigIO write: port a%8, width c
	opPortRead          // any ConfigIO read: port a%8, width c
	opDataWrite         // CONFIG_DATA write: lane a%4, width c
	opTableWrite        // BAR0 (MSI-X table, PBA) write at a|b<<8, width c
	opTableRead         // BAR0 read at a|b<<8, width c
	opNotify            // MSIX.Notify(a % (vectors+1))
	opECAM              // ECAM access to device b%4, register a|(c>>4)<<8; c&1 writes
	numOps
)

// FuzzConfigSpace drives a bus, a device's configuration space and its
// MSI-X table with arbitrary guest accesses. Nothing may panic; read-only
// bits never change; BAR changes chain (each Old decodes where the previous
// New did); and a pending vector is always masked or MSI-X disabled.
func FuzzConfigSpace(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, prog []byte) {
		r := newRig(t)
		var ro [ConfigSize]byte
		r.cfg.mu.Lock()
		for i := range ro {
			ro[i] = r.cfg.regs[i] &^ r.cfg.wmask[i]
		}
		r.cfg.mu.Unlock()
		var last [NumBARs]BARMapping
		for i := range last {
			_, last[i] = r.cfg.BARMapping(i)
		}
		for ; len(prog) >= fuzzRecord; prog = prog[fuzzRecord:] {
			r.step(prog[:fuzzRecord])
			checkReadOnly(t, r, &ro)
			for _, c := range r.changes {
				if l := last[c.Index]; c.Old.Decoding != l.Decoding || l.Decoding && c.Old.Addr != l.Addr {
					t.Fatalf("BAR%d change from %+v, but it was %+v", c.Index, c.Old, last[c.Index])
				}
				last[c.Index] = c.New
			}
			r.changes = r.changes[:0]
			for v := range rigVectors {
				if _, _, masked := r.msix.Message(v); r.msix.Pending(v) && !masked && r.msix.Enabled() {
					t.Fatalf("vector %d pending while unmasked and enabled", v)
				}
			}
		}
	})
}

func (r *rig) step(rec []byte) {
	op, a, b, c, val := rec[0]%numOps, rec[1], rec[2], rec[3], rec[4:8]
	pio := []int{1, 2, 4}[c%3]
	mmio := []int{1, 2, 4, 8}[c%4]
	switch op {
	case opConfigAddr:
		addr := uint32(a%4)<<cfgAddrDevShift | uint32(b) | uint32(c>>2)<<cfgAddrFnShift
		if c&1 == 0 {
			addr |= cfgAddrEnable
		}
		if c&2 != 0 {
			addr |= 1 << cfgAddrBusShift
		}
		r.io.Write(configAddrPort, le32(addr))
	case opPortWrite:
		r.io.Write(uint64(a%ConfigIOSize), val[:pio])
	case opPortRead:
		r.io.Read(uint64(a%ConfigIOSize), make([]byte, pio))
	case opDataWrite:
		r.io.Write(configDataPort+uint64(a%dwordSize), val[:pio])
	case opTableWrite:
		r.bar0(true, uint64(a)|uint64(b)<<8, bytes.Repeat(val, 2)[:mmio])
	case opTableRead:
		r.bar0(false, uint64(a)|uint64(b)<<8, make([]byte, mmio))
	case opNotify:
		r.msix.Notify(int(a) % (rigVectors + 1))
	case opECAM:
		off := uint64(b%4)<<ecamDevShift | uint64(a) | uint64(c>>4)<<8
		if c&1 != 0 {
			r.ecam.Write(off, bytes.Repeat(val, 2)[:mmio])
		} else {
			r.ecam.Read(off, make([]byte, mmio))
		}
	}
}

func checkReadOnly(t *testing.T, r *rig, ro *[ConfigSize]byte) {
	t.Helper()
	r.cfg.mu.Lock()
	defer r.cfg.mu.Unlock()
	for i := range ro {
		if got := r.cfg.regs[i] &^ r.cfg.wmask[i]; got != ro[i] {
			t.Fatalf("read-only bits of byte %#x changed: %#x, was %#x", i, got, ro[i])
		}
	}
}

// fuzzSeeds are programs a Linux guest would run: probe, size and program
// BAR0, walk to MSI-X, enable it, program and unmask a vector, raise it.
func fuzzSeeds() [][]byte {
	rec := func(op, a, b, c byte, v uint32) []byte { return append([]byte{op, a, b, c}, le32(v)...) }
	probe := bytes.Join([][]byte{
		rec(opConfigAddr, rigDev, RegVendorID, 0, 0),
		rec(opPortRead, configDataPort, 0, 2, 0),
		rec(opConfigAddr, rigDev, RegCommand, 0, 0),
		rec(opDataWrite, 0, 0, 1, 0),
		rec(opConfigAddr, rigDev, RegBAR0, 0, 0),
		rec(opDataWrite, 0, 0, 2, 0xFFFF_FFFF),
		rec(opPortRead, configDataPort, 0, 2, 0),
		rec(opDataWrite, 0, 0, 2, 0xD000_0000),
		rec(opConfigAddr, rigDev, RegCommand, 0, 0),
		rec(opDataWrite, 0, 0, 1, CmdMemSpace|CmdBusMaster),
	}, nil)
	msix := bytes.Join([][]byte{
		rec(opConfigAddr, rigDev, RegCapabilitiesPtr, 0, 0),
		rec(opPortRead, configDataPort, 0, 0, 0),
		rec(opConfigAddr, rigDev, headerSize+16, 0, 0),
		rec(opDataWrite, 2, 0, 1, MSIXCtlEnable|MSIXCtlFuncMask),
		rec(opTableWrite, 16+MSIXOffAddrLo, 0, 2, 0xFEE0_0000),
		rec(opTableWrite, 16+MSIXOffData, 0, 2, 0x41),
		rec(opNotify, 1, 0, 0, 0),
		rec(opDataWrite, 2, 0, 1, MSIXCtlEnable),
		rec(opTableWrite, 16+MSIXOffVectorCtl, 0, 2, 0),
		rec(opTableRead, 0, rigPBAOff>>8, 3, 0),
		rec(opNotify, 1, 0, 0, 0),
	}, nil)
	ecam := bytes.Join([][]byte{
		rec(opECAM, RegBAR0+8, rigDev, 2<<0|1, 0xFFFF_FFFF),
		rec(opECAM, RegBAR0+12, rigDev, 2, 0),
		rec(opECAM, 0, rigDev, 1<<4|2, 0),
		rec(opPortWrite, 3, 0, 0, 1),
		rec(opPortRead, 0, 0, 2, 0),
	}, nil)
	return [][]byte{probe, msix, append(probe, msix...), ecam}
}

func TestFuzzSeeds_DoWhatTheySay(t *testing.T) {
	seeds := fuzzSeeds()
	r := newRig(t)
	run := func(prog []byte) {
		for ; len(prog) >= fuzzRecord; prog = prog[fuzzRecord:] {
			r.step(prog[:fuzzRecord])
		}
	}
	run(seeds[0])
	if _, m := r.cfg.BARMapping(0); m != (BARMapping{Addr: 0xD000_0000, Decoding: true}) {
		t.Fatalf("probe seed left BAR0 at %+v", m)
	}
	run(seeds[1])
	want := fired{1, Message{Addr: 0xFEE0_0000, Data: 0x41}}
	if len(r.fired) != 2 || r.fired[0] != want || r.fired[1] != want {
		t.Fatalf("MSI-X seed fired %v, want %v twice", r.fired, want)
	}
}
