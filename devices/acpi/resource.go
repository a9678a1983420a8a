package acpi

import "encoding/binary"

// Resource data descriptors for _CRS buffers (ACPI 6.4 §6.4).
const (
	resIOPort       = 0x47 // small item 0x08, length 7 (§6.4.2.5)
	resIOPortLen    = 8
	resIODecode16   = 0x01 // IO information: 16-bit address decode
	resEndTag       = 0x79 // small item 0x0F, length 1 (§6.4.2.9)
	resDWordAddr    = 0x87 // large item 0x07 (§6.4.3.5.2)
	resDWordAddrLen = 0x17 // bytes after the 3-byte large item header
	resWordAddr     = 0x88 // large item 0x08 (§6.4.3.5.3)
	resWordAddrLen  = 0x0D
	resLargeHdrLen  = 3 // tag, 16-bit length
)

// Address space descriptor fields (§6.4.3.5, Table 6.45 onwards).
const (
	addrTypeMemory = 0 // resource type byte
	addrTypeBus    = 2

	// General flags: bit 0 clear is ResourceProducer, bit 1 clear is
	// PosDecode; MinFixed and MaxFixed say the window cannot move.
	addrFlagMinFixed = 1 << 2
	addrFlagMaxFixed = 1 << 3

	// Memory type-specific flags: bit 0 ReadWrite; bits 2:1 clear is
	// NonCacheable (PCI MMIO must not be cached).
	memFlagReadWrite = 1 << 0
)

// wordBusNumber is WordBusNumber(ResourceProducer, MinFixed, MaxFixed,
// PosDecode, 0, lo, hi, 0, hi-lo+1).
func wordBusNumber(lo, hi uint16) []byte {
	b := []byte{resWordAddr, resWordAddrLen, 0, addrTypeBus, addrFlagMinFixed | addrFlagMaxFixed, 0}
	for _, v := range []uint16{0, lo, hi, 0, hi - lo + 1} { // granularity, min, max, translation, length
		b = binary.LittleEndian.AppendUint16(b, v)
	}
	return b
}

// ioPort is IO(Decode16, lo, lo, align, length): a fixed port range.
func ioPort(lo uint16, align, length uint8) []byte {
	b := []byte{resIOPort, resIODecode16}
	b = binary.LittleEndian.AppendUint16(b, lo) // minimum base
	b = binary.LittleEndian.AppendUint16(b, lo) // maximum base
	return append(b, align, length)
}

// dwordMemory is DWordMemory(ResourceProducer, PosDecode, MinFixed,
// MaxFixed, NonCacheable, ReadWrite, 0, lo, hi, 0, hi-lo+1); hi is the
// window's last byte.
func dwordMemory(lo, hi uint32) []byte {
	b := []byte{resDWordAddr, resDWordAddrLen, 0, addrTypeMemory, addrFlagMinFixed | addrFlagMaxFixed, memFlagReadWrite}
	for _, v := range []uint32{0, lo, hi, 0, hi - lo + 1} {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	return b
}

// resourceTemplate is ResourceTemplate(){descs}: a buffer ending in an
// End Tag whose checksum byte 0 means "treat as correct" (§6.4.2.9).
func (a *aml) resourceTemplate(descs ...[]byte) []byte {
	var data []byte
	for _, d := range descs {
		data = append(data, d...)
	}
	return a.buffer(append(data, resEndTag, 0))
}
