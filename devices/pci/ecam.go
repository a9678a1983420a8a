package pci

// ECAM, the PCI Express Enhanced Configuration Access Mechanism (PCIe 4.0
// §7.2.2): each function's space is a 4 KiB page of MMIO at
// base + bus<<20 + device<<15 + function<<12. A conventional function
// answers only the first 256 bytes; the rest of its page reads 0, which
// tells software there are no extended capabilities.
const (
	ECAMBusSize = 1 << ecamBusShift // the MMIO a single bus (bus 0) takes

	ecamBusShift = 20
	ecamDevShift = 15
	ecamFnShift  = 12
	ecamDevMask  = 0x1F
	ecamFnMask   = 0x7
	ecamRegMask  = 0xFFF
	ecamPageSize = 1 << ecamFnShift
)

// ECAM is the MMIO device for memory-mapped configuration of a Bus, a
// second path to the same spaces ConfigIO reaches. Place it at the base the
// ACPI MCFG table names, for ECAMBusSize bytes.
type ECAM struct {
	bus *Bus
}

// NewECAM returns the MMIO device for bus.
func NewECAM(bus *Bus) *ECAM { return &ECAM{bus: bus} }

// Read implements an MMIO read at offset from the ECAM base. An access
// running past its function's page is undefined; it reads all ones.
func (e *ECAM) Read(offset uint64, data []byte) {
	if !ecamInPage(offset, len(data)) {
		fillOnes(data)
		return
	}
	e.bus.readConfig(offset>>ecamBusShift, offset>>ecamDevShift&ecamDevMask,
		offset>>ecamFnShift&ecamFnMask, offset&ecamRegMask, data)
}

// Write implements an MMIO write at offset from the ECAM base.
func (e *ECAM) Write(offset uint64, data []byte) {
	if !ecamInPage(offset, len(data)) {
		return
	}
	e.bus.writeConfig(offset>>ecamBusShift, offset>>ecamDevShift&ecamDevMask,
		offset>>ecamFnShift&ecamFnMask, offset&ecamRegMask, data)
}

func ecamInPage(offset uint64, size int) bool {
	return offset&ecamRegMask+uint64(size) <= ecamPageSize
}
