package acpi

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/vmm-dev/vmm/guestmem"
)

func testConfig(cpus int) Config {
	return Config{
		CPUs: cpus, PM1aEvt: 0x600, PM1aCnt: 0x604, PMTmr: 0x608, SCI: 9,
		PCIMMIOBase: 0xC000_0000, PCIMMIOEnd: 0xFEBF_FFFF, IOAPICID: 0,
		PCIINTx: testINTx(),
	}
}

// testINTx routes every slot's four pins over GSIs 16-23, rotated by slot.
func testINTx() []INTxRoute {
	var rs []INTxRoute
	for slot := range uint8(pciSlots) {
		for pin := range uint8(pciINTxPins) {
			rs = append(rs, INTxRoute{Slot: slot, Pin: pin, GSI: firstPCIGSI + uint32(slot+pin)%8})
		}
	}
	return rs
}

func sum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return s
}

// checkSDT checks a table's signature, length field and checksum.
func checkSDT(t *testing.T, tbl []byte, sig string) {
	t.Helper()
	if len(tbl) < headerLen || string(tbl[:4]) != sig {
		t.Fatalf("table %q: want signature %q", tbl[:min(4, len(tbl))], sig)
	}
	if n := binary.LittleEndian.Uint32(tbl[hdrLength:]); int(n) != len(tbl) {
		t.Errorf("%s: length field %d, table is %d bytes", sig, n, len(tbl))
	}
	if s := sum(tbl); s != 0 {
		t.Errorf("%s: bytes sum to %#x, want 0", sig, s)
	}
}

func TestTables_ChecksumAndLength(t *testing.T) {
	cfg := testConfig(4)
	fadt, err := FADT(cfg, 0xE1000, 0xE2000)
	if err != nil {
		t.Fatal(err)
	}
	madt, err := MADT(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dsdt, err := DSDT(cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkSDT(t, fadt, "FACP")
	checkSDT(t, madt, "APIC")
	checkSDT(t, dsdt, "DSDT")
	checkSDT(t, XSDT([]guestmem.GuestAddr{1, 2}), "XSDT")
	if len(fadt) != fadtLen || fadt[hdrRevision] != 6 {
		t.Errorf("FADT: %d bytes revision %d, want 276 bytes revision 6", len(fadt), fadt[hdrRevision])
	}
	rsdp := RSDP(0xE0040)
	if len(rsdp) != rsdpLen || sum(rsdp[:rsdpV1Len]) != 0 || sum(rsdp) != 0 {
		t.Errorf("RSDP % x: bad length or checksums", rsdp)
	}
	if facs := FACS(); len(facs) != facsLen || binary.LittleEndian.Uint32(facs[facsLength:]) != facsLen {
		t.Errorf("FACS: bad length")
	}
}

func TestFADT_Fields(t *testing.T) {
	fadt, err := FADT(testConfig(1), 0xE1000, 0xE2000)
	if err != nil {
		t.Fatal(err)
	}
	u16 := func(off int) uint16 { return binary.LittleEndian.Uint16(fadt[off:]) }
	u32 := func(off int) uint32 { return binary.LittleEndian.Uint32(fadt[off:]) }
	u64 := func(off int) uint64 { return binary.LittleEndian.Uint64(fadt[off:]) }
	checks := []struct {
		name      string
		got, want uint64
	}{
		{"SCI_INT", uint64(u16(fadtSCIInt)), 9},
		{"SMI_CMD", uint64(u32(fadtSMICmd)), 0},
		{"PM1a_EVT_BLK", uint64(u32(fadtPM1aEvtBlk)), 0x600},
		{"PM1a_CNT_BLK", uint64(u32(fadtPM1aCntBlk)), 0x604},
		{"PM_TMR_BLK", uint64(u32(fadtPMTmrBlk)), 0x608},
		{"X_PM1a_EVT_BLK", u64(fadtXPM1aEvtBlk + gasAddress), 0x600},
		{"X_PM1a_CNT_BLK", u64(fadtXPM1aCntBlk + gasAddress), 0x604},
		{"X_PM_TMR_BLK", u64(fadtXPMTmrBlk + gasAddress), 0x608},
		{"X_PM_TMR_BLK width", uint64(fadt[fadtXPMTmrBlk+gasBitWidth]), 32},
		{"DSDT", uint64(u32(fadtDSDT)), 0},
		{"X_DSDT", u64(fadtXDSDT), 0xE1000},
		{"FIRMWARE_CTRL", uint64(u32(fadtFirmwareCtrl)), 0},
		{"X_FIRMWARE_CTRL", u64(fadtXFirmwareCtrl), 0xE2000},
		{"HW_REDUCED_ACPI", uint64(u32(fadtFlags) & fadtFlagHWReduced), 0},
		{"TMR_VAL_EXT", uint64(u32(fadtFlags) & fadtFlagTmrValExt), fadtFlagTmrValExt},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
}

// madtEntry is one interrupt controller structure read back from a MADT.
type madtEntry struct {
	typ  byte
	body []byte // the whole entry, type and length included
}

func readMADT(t *testing.T, madt []byte) (lapicAddr, flags uint32, entries []madtEntry) {
	t.Helper()
	body := madt[headerLen:]
	lapicAddr = binary.LittleEndian.Uint32(body[madtLocalAPICAddr:])
	flags = binary.LittleEndian.Uint32(body[madtFlags:])
	for rest := body[madtBodyLen:]; len(rest) > 0; {
		if len(rest) < 2 || rest[1] < 2 || int(rest[1]) > len(rest) {
			t.Fatalf("MADT entry % x: bad length", rest)
		}
		entries = append(entries, madtEntry{typ: rest[0], body: rest[:rest[1]]})
		rest = rest[rest[1]:]
	}
	return lapicAddr, flags, entries
}

func TestMADT_ReadBack(t *testing.T) {
	for _, cpus := range []int{1, 2, 8} {
		cfg := testConfig(cpus)
		cfg.IOAPICID = 3
		madt, err := MADT(cfg)
		if err != nil {
			t.Fatal(err)
		}
		checkSDT(t, madt, "APIC")
		lapicAddr, flags, entries := readMADT(t, madt)
		if lapicAddr != 0xFEE0_0000 || flags != madtPCATCompat {
			t.Errorf("%d CPUs: LAPIC address %#x flags %#x", cpus, lapicAddr, flags)
		}
		var ids []byte
		var ioapics, isos []madtEntry
		for _, e := range entries {
			switch e.typ {
			case madtTypeLocalAPIC:
				if e.body[lapicUID] != e.body[lapicID] || binary.LittleEndian.Uint32(e.body[lapicFlags:]) != lapicEnabled {
					t.Errorf("local APIC % x: want UID = ID, enabled", e.body)
				}
				ids = append(ids, e.body[lapicID])
			case madtTypeIOAPIC:
				ioapics = append(ioapics, e)
			case madtTypeISO:
				isos = append(isos, e)
			}
		}
		if len(ids) != cpus {
			t.Fatalf("%d CPUs: %d local APIC entries", cpus, len(ids))
		}
		for i, id := range ids {
			if int(id) != i {
				t.Errorf("local APIC %d has ID %d", i, id)
			}
		}
		if len(ioapics) != 1 {
			t.Fatalf("%d I/O APIC entries, want 1", len(ioapics))
		}
		io := ioapics[0].body
		if io[ioapicID] != 3 || binary.LittleEndian.Uint32(io[ioapicAddr:]) != 0xFEC0_0000 || binary.LittleEndian.Uint32(io[ioapicGSIBase:]) != 0 {
			t.Errorf("I/O APIC % x", io)
		}
		want := [][3]uint32{{0, 2, 0}, {9, 9, 0xD}} // source IRQ, GSI, flags
		if len(isos) != len(want) {
			t.Fatalf("%d overrides, want %d", len(isos), len(want))
		}
		for i, e := range isos {
			got := [3]uint32{uint32(e.body[isoSource]), binary.LittleEndian.Uint32(e.body[isoGSI:]), uint32(binary.LittleEndian.Uint16(e.body[isoFlags:]))}
			if e.body[isoBus] != 0 || got != want[i] {
				t.Errorf("override %d: bus %d %v, want ISA %v", i, e.body[isoBus], got, want[i])
			}
		}
	}
}

func TestConfig_Invalid_Fails(t *testing.T) {
	tests := map[string]func(*Config){
		"no CPUs":         func(c *Config) { c.CPUs = 0 },
		"too many CPUs":   func(c *Config) { c.CPUs = 256 },
		"SCI 0":           func(c *Config) { c.SCI = 0 },
		"SCI 2":           func(c *Config) { c.SCI = 2 },
		"SCI 16":          func(c *Config) { c.SCI = 16 },
		"empty window":    func(c *Config) { c.PCIMMIOBase, c.PCIMMIOEnd = 2, 1 },
		"zero port":       func(c *Config) { c.PMTmr = 0 },
		"timer past 64K":  func(c *Config) { c.PMTmr = 0xFFFE },
		"overlapping evt": func(c *Config) { c.PM1aCnt = 0x602 },
		"overlapping tmr": func(c *Config) { c.PMTmr = 0x605 },
		"INTx slot 32":    func(c *Config) { c.PCIINTx = []INTxRoute{{Slot: 32, GSI: 16}} },
		"INTx pin 4":      func(c *Config) { c.PCIINTx = []INTxRoute{{Pin: 4, GSI: 16}} },
		"INTx ISA GSI":    func(c *Config) { c.PCIINTx = []INTxRoute{{GSI: 9}} },
		"INTx GSI 24":     func(c *Config) { c.PCIINTx = []INTxRoute{{GSI: 24}} },
	}
	for name, mutate := range tests {
		cfg := testConfig(1)
		mutate(&cfg)
		if _, err := Build(cfg); err == nil {
			t.Errorf("%s: Build succeeded", name)
		}
	}
}

func TestBuild_TooSmall_ErrNoSpace(t *testing.T) {
	_, err := build(testConfig(8), RegionStart, RegionStart+0x100)
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("err = %v, want ErrNoSpace", err)
	}
}

func TestBuild_MaxCPUs_Fits(t *testing.T) {
	img, err := Build(testConfig(MaxCPUs))
	if err != nil {
		t.Fatal(err)
	}
	if end := uint64(img.Base) + uint64(len(img.Data)); end > uint64(RegionEnd) {
		t.Errorf("image ends at %#x", end)
	}
}

func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }
func le64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }

// TestDSDT_FewAllocations: every VM's start builds the DSDT, whose _PRT
// has one small package per slot and pin (128 here). Built term by term
// it took 1,638 allocations and 78 µs; the encoders size each term once.
// A count, not a time, so the test says the same on any host.
func TestDSDT_FewAllocations(t *testing.T) {
	cfg := testConfig(2)
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := DSDT(cfg); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 100 {
		t.Fatalf("DSDT with %d INTx routes: %.0f allocations, want at most 100", len(cfg.PCIINTx), allocs)
	}
}

func BenchmarkDSDT(b *testing.B) {
	cfg := testConfig(2)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DSDT(cfg); err != nil {
			b.Fatal(err)
		}
	}
}
