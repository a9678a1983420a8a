package acpi

import "fmt"

// DSDT (§5.2.11.1): a definition block whose body is AML.
const (
	dsdtSignature = "DSDT"
	// Revision 2 and above: integers are 64 bits (§5.2.11.1).
	dsdtRevision = 2

	// SLP_TYP value for S5 (soft off) in \_S5_ and in PM1a_CNT; any
	// value works as long as both agree. No other sleep state is offered.
	slpTypS5 = 5

	pciHostBridgeHID = "PNP0A08" // PCI Express root bridge
	pciHostBridgeCID = "PNP0A03" // PCI root bridge, for older OSes
	pciConfigPort    = 0x0CF8    // CONFIG_ADDRESS and CONFIG_DATA, 8 ports
	pciConfigPorts   = 8
)

// DSDT returns the Differentiated System Description Table:
//
//	Name (\_S5, Package () { 5, 5, 0, 0 })  // SLP_TYPa, SLP_TYPb, reserved
//	Scope (\_SB) {
//	    Device (PCI0) {
//	        Name (_HID, EisaId ("PNP0A08"))
//	        Name (_CID, EisaId ("PNP0A03"))
//	        Name (_SEG, 0)
//	        Name (_BBN, 0)
//	        Name (_UID, 0)
//	        Name (_CRS, ResourceTemplate () {
//	            WordBusNumber (..., 0, 0, ...)              // bus 0 only
//	            IO (Decode16, 0xCF8, 0xCF8, 1, 8)            // config ports
//	            DWordMemory (..., PCIMMIOBase, PCIMMIOEnd)   // BAR window
//	        })
//	        Name (_PRT, Package () {                       // from cfg.PCIINTx
//	            Package () { 0x0001FFFF, 0, 0, 17 },         // slot 1 INTA# -> GSI 17
//	            ...
//	        })
//	    }
//	}
//
// \_S5 is how Linux learns the SLP_TYP to write for power-off (§7.4.2);
// the bridge's _CRS is the window it may assign BARs from; _PRT is where
// each slot's INTx pins go (§6.2.13).
func DSDT(cfg Config) ([]byte, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var a aml
	bridge := [][]byte{
		a.name("_HID", a.eisaID(pciHostBridgeHID)),
		a.name("_CID", a.eisaID(pciHostBridgeCID)),
		a.name("_SEG", amlInteger(0)),
		a.name("_BBN", amlInteger(0)),
		a.name("_UID", amlInteger(0)),
		a.name("_CRS", a.resourceTemplate(
			wordBusNumber(0, 0),
			ioPort(pciConfigPort, 1, pciConfigPorts),
			dwordMemory(cfg.PCIMMIOBase, cfg.PCIMMIOEnd),
		)),
	}
	if len(cfg.PCIINTx) > 0 {
		bridge = append(bridge, a.name("_PRT", prt(&a, cfg.PCIINTx)))
	}
	body := append(
		a.name(`\_S5`, a.pkgOf(amlInteger(slpTypS5), amlInteger(slpTypS5), amlInteger(0), amlInteger(0))),
		a.scope(`\_SB`,
			a.device("PCI0", bridge...),
		)...)
	if a.err != nil {
		return nil, a.err
	}
	return sdt(dsdtSignature, dsdtRevision, body), nil
}

// prt is the _PRT package: one entry per route, each Package { Address,
// Pin, Source, Source Index } where Address is the device in the high word
// and 0xFFFF ("any function") in the low, and Source 0 means Source Index is
// a GSI rather than an index into a link device (§6.2.13).
func prt(a *aml, routes []INTxRoute) []byte {
	if len(routes) > 0xFF {
		a.fail(fmt.Errorf("aml: _PRT of %d routes", len(routes)))
		return nil
	}
	// Each entry: PackageOp, PkgLength, count, and four integers.
	entries := make([]byte, 0, len(routes)*(3+4*amlIntegerMax))
	for _, r := range routes {
		entries = a.appendIntegerPkg(entries, uint64(r.Slot)<<16|0xFFFF, uint64(r.Pin), 0, uint64(r.GSI))
	}
	count := [1]byte{byte(len(routes))}
	return a.pkgHead([]byte{amlPackageOp}, count[:], [][]byte{entries})
}
