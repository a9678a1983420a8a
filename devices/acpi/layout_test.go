package acpi

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/vmm-dev/vmm/guestmem"
)

// readTable reads the table at addr whole, checking header and checksum.
func readTable(t *testing.T, mem *guestmem.Memory, addr uint64, sig string) []byte {
	t.Helper()
	if addr < uint64(RegionStart) || addr >= uint64(RegionEnd) || addr%tableAlign != 0 {
		t.Fatalf("%s at %#x: outside the BIOS area or unaligned", sig, addr)
	}
	hdr := make([]byte, headerLen)
	if err := mem.ReadAt(hdr, guestmem.GuestAddr(addr)); err != nil {
		t.Fatal(err)
	}
	tbl := make([]byte, binary.LittleEndian.Uint32(hdr[hdrLength:]))
	if err := mem.ReadAt(tbl, guestmem.GuestAddr(addr)); err != nil {
		t.Fatal(err)
	}
	checkSDT(t, tbl, sig)
	return tbl
}

func TestWrite_GuestFindsRSDPAndTables(t *testing.T) {
	mem := guestmem.NewTest(1 << 20)
	if err := Write(mem, testConfig(2)); err != nil {
		t.Fatal(err)
	}
	// Search as the guest does: 16-byte boundaries in 0xE0000-0xFFFFF.
	var rsdp []byte
	for a := uint64(RegionStart); a < uint64(RegionEnd); a += rsdpAlign {
		b := make([]byte, rsdpLen)
		if err := mem.ReadAt(b, guestmem.GuestAddr(a)); err != nil {
			t.Fatal(err)
		}
		if bytes.HasPrefix(b, []byte(rsdpSignature)) {
			rsdp = b
			break
		}
	}
	if rsdp == nil {
		t.Fatal("no RSDP found")
	}
	if sum(rsdp[:rsdpV1Len]) != 0 || sum(rsdp) != 0 || rsdp[rsdpRevision] != 2 {
		t.Fatalf("RSDP % x: bad checksum or revision", rsdp)
	}
	xsdt := readTable(t, mem, binary.LittleEndian.Uint64(rsdp[rsdpXSDTAddr:]), "XSDT")
	sigs := map[string][]byte{}
	for off := headerLen; off < len(xsdt); off += xsdtEntryLen {
		addr := binary.LittleEndian.Uint64(xsdt[off:])
		sig := make([]byte, 4)
		if err := mem.ReadAt(sig, guestmem.GuestAddr(addr)); err != nil {
			t.Fatal(err)
		}
		sigs[string(sig)] = readTable(t, mem, addr, string(sig))
	}
	fadt, ok := sigs["FACP"]
	if !ok || sigs["APIC"] == nil || len(sigs) != 2 {
		t.Fatalf("XSDT lists %d tables, want FACP and APIC", len(sigs))
	}
	readTable(t, mem, binary.LittleEndian.Uint64(fadt[fadtXDSDT:]), "DSDT")
	facsAt := binary.LittleEndian.Uint64(fadt[fadtXFirmwareCtrl:])
	facs := make([]byte, facsLen)
	if err := mem.ReadAt(facs, guestmem.GuestAddr(facsAt)); err != nil {
		t.Fatal(err)
	}
	if facsAt%facsAlign != 0 || string(facs[:4]) != facsSignature {
		t.Errorf("FACS at %#x: % x", facsAt, facs[:8])
	}
}

func TestWrite_MemoryTooSmall_Fails(t *testing.T) {
	if err := Write(guestmem.NewTest(0xE0000), testConfig(1)); err == nil {
		t.Fatal("Write succeeded into memory that ends below the BIOS area")
	}
}
