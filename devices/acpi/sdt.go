// Package acpi builds the ACPI tables a stock x86 Linux kernel needs to
// find its CPUs, interrupt controllers and PCI host bridge and to power
// off (RSDP, XSDT, FADT, FACS, MADT, DSDT), and models the PM1a and PM
// timer registers the FADT points at. References are to ACPI 6.4.
package acpi

import (
	"encoding/binary"

	"github.com/vmm-dev/vmm/guestmem"
)

// System description table header (§5.2.6).
const (
	hdrSignature       = 0
	hdrLength          = 4
	hdrRevision        = 8
	hdrChecksum        = 9
	hdrOEMID           = 10
	hdrOEMTableID      = 16
	hdrOEMRevision     = 24
	hdrCreatorID       = 28
	hdrCreatorRevision = 32
	headerLen          = 36
)

// Identity written into every table.
const (
	oemID           = "VMMDEV" // 6 bytes
	oemTablePrefix  = "VMM"    // + signature + space: 8 bytes
	oemRevision     = 1
	creatorID       = "VMMD"
	creatorRevision = 1
)

// RSDP (§5.2.5.3).
const (
	rsdpSignature   = "RSD PTR "
	rsdpChecksum    = 8 // covers the first rsdpV1Len bytes
	rsdpOEMID       = 9
	rsdpRevision    = 15
	rsdpRSDTAddr    = 16
	rsdpLength      = 20
	rsdpXSDTAddr    = 24
	rsdpExtChecksum = 32 // covers all rsdpLen bytes
	rsdpV1Len       = 20
	rsdpLen         = 36
	rsdpRevisionV2  = 2 // ACPI 2.0 and later: XSDT address valid
	rsdpAlign       = 16
)

// XSDT (§5.2.8).
const (
	xsdtSignature = "XSDT"
	xsdtRevision  = 1
	xsdtEntryLen  = 8
)

// FACS (§5.2.10). It has no checksum and no standard header.
const (
	facsSignature = "FACS"
	facsLength    = 4
	facsVersion   = 32
	facsLen       = 64
	facsVersion2  = 2 // ACPI 4.0 and later layout
	facsAlign     = 64
)

// Generic Address Structure (§5.2.3.2).
const (
	gasSpaceID     = 0
	gasBitWidth    = 1
	gasBitOffset   = 2
	gasAccessSize  = 3
	gasAddress     = 4
	gasSystemIO    = 1 // address space: system I/O ports
	gasAccessWord  = 2 // access size: 16 bits
	gasAccessDWord = 3 // access size: 32 bits
	bitsPerByte    = 8
)

// tableAlign is the alignment we give every table after the RSDP.
const tableAlign = 8

// checksum returns the byte that makes b sum to zero mod 256.
func checksum(b []byte) byte {
	var sum byte
	for _, c := range b {
		sum += c
	}
	return -sum
}

// sdt returns a table of the given signature and revision with body after
// the header, its length and checksum filled in.
func sdt(sig string, rev uint8, body []byte) []byte {
	t := make([]byte, headerLen+len(body))
	copy(t[hdrSignature:], sig)
	binary.LittleEndian.PutUint32(t[hdrLength:], uint32(len(t)))
	t[hdrRevision] = rev
	copy(t[hdrOEMID:], oemID)
	copy(t[hdrOEMTableID:], oemTablePrefix+sig+" ")
	binary.LittleEndian.PutUint32(t[hdrOEMRevision:], oemRevision)
	copy(t[hdrCreatorID:], creatorID)
	binary.LittleEndian.PutUint32(t[hdrCreatorRevision:], creatorRevision)
	copy(t[headerLen:], body)
	t[hdrChecksum] = checksum(t)
	return t
}

// putGAS writes a Generic Address Structure for an I/O port block of
// byteLen bytes accessed accessSize at a time.
func putGAS(b []byte, port uint16, byteLen, accessSize uint8) {
	b[gasSpaceID] = gasSystemIO
	b[gasBitWidth] = byteLen * bitsPerByte
	b[gasBitOffset] = 0
	b[gasAccessSize] = accessSize
	binary.LittleEndian.PutUint64(b[gasAddress:], uint64(port))
}

// RSDP returns the revision 2 Root System Description Pointer for an XSDT
// at xsdt. The RSDT address stays zero: revision 2 OSes use the XSDT.
func RSDP(xsdt guestmem.GuestAddr) []byte {
	b := make([]byte, rsdpLen)
	copy(b, rsdpSignature)
	copy(b[rsdpOEMID:], oemID)
	b[rsdpRevision] = rsdpRevisionV2
	binary.LittleEndian.PutUint32(b[rsdpLength:], rsdpLen)
	binary.LittleEndian.PutUint64(b[rsdpXSDTAddr:], uint64(xsdt))
	b[rsdpChecksum] = checksum(b[:rsdpV1Len])
	b[rsdpExtChecksum] = checksum(b)
	return b
}

// XSDT returns an Extended System Description Table listing entries.
func XSDT(entries []guestmem.GuestAddr) []byte {
	body := make([]byte, 0, len(entries)*xsdtEntryLen)
	for _, e := range entries {
		body = binary.LittleEndian.AppendUint64(body, uint64(e))
	}
	return sdt(xsdtSignature, xsdtRevision, body)
}

// FACS returns a Firmware ACPI Control Structure. A FADT that is not
// hardware-reduced must point at one (§5.2.9, FIRMWARE_CTRL); ours has no
// waking vector (no S3) and a global lock nobody contends for.
func FACS() []byte {
	b := make([]byte, facsLen)
	copy(b, facsSignature)
	binary.LittleEndian.PutUint32(b[facsLength:], facsLen)
	b[facsVersion] = facsVersion2
	return b
}
