package acpi

import "encoding/binary"

// MADT (§5.2.12).
const (
	madtSignature     = "APIC"
	madtRevision      = 5 // ACPI 6.3 and 6.4
	madtLocalAPICAddr = 0 // body offsets, after the header
	madtFlags         = 4
	madtBodyLen       = 8
	madtPCATCompat    = 1 << 0 // dual 8259s present: Linux masks them

	// LocalAPICAddr is where every CPU's local APIC is mapped.
	LocalAPICAddr = 0xFEE0_0000
	// IOAPICAddr is the I/O APIC's MMIO base.
	IOAPICAddr = 0xFEC0_0000
)

// Interrupt controller structures: type, length, then fields.
const (
	madtTypeLocalAPIC = 0 // §5.2.12.2
	madtLenLocalAPIC  = 8
	lapicUID          = 2
	lapicID           = 3
	lapicFlags        = 4
	lapicEnabled      = 1 << 0

	madtTypeIOAPIC = 1 // §5.2.12.3
	madtLenIOAPIC  = 12
	ioapicID       = 2
	ioapicAddr     = 4
	ioapicGSIBase  = 8

	madtTypeISO = 2 // Interrupt Source Override, §5.2.12.5
	madtLenISO  = 10
	isoBus      = 2 // 0: ISA
	isoSource   = 3
	isoGSI      = 4
	isoFlags    = 8

	// MPS INTI flags (§5.2.12.5, Table 5.50).
	intiPolarityHigh = 0x1
	intiTriggerLevel = 0xC

	pitIRQ = 0 // the PIT's ISA IRQ, wired to I/O APIC pin 2 as on PCs
	pitGSI = 2
)

// MADT returns the Multiple APIC Description Table for cfg: one enabled
// local APIC per CPU (ACPI UID and APIC ID both the CPU index), one I/O
// APIC at GSI base 0, and the overrides PC firmware publishes: IRQ 0 on
// GSI 2 (edge, active-high, as ISA conforms) and the SCI level-triggered,
// active-high.
func MADT(cfg Config) ([]byte, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, madtBodyLen)
	binary.LittleEndian.PutUint32(b[madtLocalAPICAddr:], LocalAPICAddr)
	binary.LittleEndian.PutUint32(b[madtFlags:], madtPCATCompat)
	for i := range cfg.CPUs {
		e := make([]byte, madtLenLocalAPIC)
		e[0], e[1] = madtTypeLocalAPIC, madtLenLocalAPIC
		e[lapicUID], e[lapicID] = byte(i), byte(i)
		binary.LittleEndian.PutUint32(e[lapicFlags:], lapicEnabled)
		b = append(b, e...)
	}
	io := make([]byte, madtLenIOAPIC)
	io[0], io[1] = madtTypeIOAPIC, madtLenIOAPIC
	io[ioapicID] = cfg.IOAPICID
	binary.LittleEndian.PutUint32(io[ioapicAddr:], IOAPICAddr)
	binary.LittleEndian.PutUint32(io[ioapicGSIBase:], 0)
	b = append(b, io...)
	b = append(b, iso(pitIRQ, pitGSI, 0)...)
	b = append(b, iso(cfg.SCI, uint32(cfg.SCI), intiPolarityHigh|intiTriggerLevel)...)
	return sdt(madtSignature, madtRevision, b), nil
}

// iso is an Interrupt Source Override for ISA IRQ src.
func iso(src uint8, gsi uint32, flags uint16) []byte {
	e := make([]byte, madtLenISO)
	e[0], e[1] = madtTypeISO, madtLenISO
	e[isoBus], e[isoSource] = 0, src
	binary.LittleEndian.PutUint32(e[isoGSI:], gsi)
	binary.LittleEndian.PutUint16(e[isoFlags:], flags)
	return e
}
