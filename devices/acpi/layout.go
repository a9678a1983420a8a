package acpi

import (
	"errors"
	"fmt"

	"github.com/vmm-dev/vmm/guestmem"
)

// The BIOS read-only area where the tables live. The guest looks for the
// RSDP on 16-byte boundaries in it (§5.2.5.1); the e820 map reserves it.
const (
	RegionStart guestmem.GuestAddr = 0x000E_0000
	RegionEnd   guestmem.GuestAddr = 0x0010_0000 // exclusive
)

// MaxCPUs is the most CPUs the MADT describes: xAPIC IDs are 8 bits and
// 0xFF is the broadcast ID.
const MaxCPUs = 255

// ErrNoSpace is returned when the tables do not fit in the BIOS area.
var ErrNoSpace = errors.New("acpi: tables do not fit in the BIOS area")

// Config is what the tables describe.
type Config struct {
	CPUs int // 1..MaxCPUs; CPU i has APIC ID i

	// I/O ports of the PM1a event block (PM1EventLen bytes), PM1a control
	// block (PM1ControlLen) and PM timer (PMTimerLen); e.g. 0x600, 0x604,
	// 0x608. They must not overlap.
	PM1aEvt, PM1aCnt, PMTmr uint16

	// SCI is the ISA IRQ of the System Control Interrupt, usually 9. It is
	// routed to the same-numbered GSI, level-triggered and active-high.
	SCI uint8

	// PCIMMIOBase and PCIMMIOEnd bound the host bridge's 32-bit memory
	// window, both inclusive: e.g. 0xC000_0000 and 0xFEBF_FFFF.
	PCIMMIOBase, PCIMMIOEnd uint32

	IOAPICID uint8

	// PCIINTx routes the INTx pins of the devices on bus 0 to IOAPIC
	// inputs; the DSDT publishes it as the host bridge's _PRT, which is how
	// an OS finds a function's interrupt when MSI-X is off. Empty: no _PRT.
	PCIINTx []INTxRoute
}

// INTxRoute says that INTx pin Pin (0 for INTA# .. 3 for INTD#) of PCI
// device Slot raises GSI, a level-triggered, active-low IOAPIC input
// (§6.2.13: a _PRT entry with no link device names a GSI directly).
type INTxRoute struct {
	Slot, Pin uint8
	GSI       uint32
}

// The INTx routes' limits: 32 devices of 4 pins on bus 0, and the IOAPIC
// inputs above the 16 ISA IRQs (which keep their edge-triggered meaning).
const (
	pciSlots       = 32
	pciINTxPins    = 4
	firstPCIGSI    = 16
	ioapicGSILimit = 24 // the in-kernel IOAPIC's inputs
)

// Validate reports the first field of c that the tables cannot express.
func (c Config) Validate() error {
	if c.CPUs < 1 || c.CPUs > MaxCPUs {
		return fmt.Errorf("acpi: %d CPUs: want 1 to %d", c.CPUs, MaxCPUs)
	}
	// Not 0 (the PIT) nor 2 (IRQ 0's GSI), and an ISA IRQ for the override.
	if c.SCI == pitIRQ || c.SCI == pitGSI || c.SCI > 15 {
		return fmt.Errorf("acpi: SCI IRQ %d: want an ISA IRQ other than 0 and 2", c.SCI)
	}
	if c.PCIMMIOBase > c.PCIMMIOEnd {
		return fmt.Errorf("acpi: PCI MMIO window [%#x, %#x] is empty", c.PCIMMIOBase, c.PCIMMIOEnd)
	}
	for _, r := range c.PCIINTx {
		if r.Slot >= pciSlots || r.Pin >= pciINTxPins || r.GSI < firstPCIGSI || r.GSI >= ioapicGSILimit {
			return fmt.Errorf("acpi: INTx route slot %d pin %d to GSI %d: want slot < %d, pin < %d, GSI %d to %d",
				r.Slot, r.Pin, r.GSI, pciSlots, pciINTxPins, firstPCIGSI, ioapicGSILimit-1)
		}
	}
	blocks := []struct {
		name string
		port uint16
		n    uint16
	}{{"PM1a_EVT", c.PM1aEvt, PM1EventLen}, {"PM1a_CNT", c.PM1aCnt, PM1ControlLen}, {"PM_TMR", c.PMTmr, PMTimerLen}}
	for i, b := range blocks {
		if b.port == 0 || uint32(b.port)+uint32(b.n) > 1<<16 {
			return fmt.Errorf("acpi: %s port %#x: want a non-zero block inside the I/O space", b.name, b.port)
		}
		for _, o := range blocks[:i] {
			if b.port < o.port+o.n && o.port < b.port+b.n {
				return fmt.Errorf("acpi: %s at %#x overlaps %s at %#x", b.name, b.port, o.name, o.port)
			}
		}
	}
	return nil
}

// Image is the tables laid out for guest memory: Data goes at Base, and
// the RSDP is at RSDP (which boot_params.acpi_rsdp_addr may also carry).
type Image struct {
	Base guestmem.GuestAddr
	Data []byte
	RSDP guestmem.GuestAddr
}

// Build lays the tables out from RegionStart: the RSDP first (16-byte
// aligned), then XSDT, FADT, FACS (64-byte aligned), MADT and DSDT (each
// 8-byte aligned). It fails with ErrNoSpace past RegionEnd.
func Build(cfg Config) (Image, error) {
	return build(cfg, RegionStart, RegionEnd)
}

// Write builds the tables and copies them into mem.
func Write(mem *guestmem.Memory, cfg Config) error {
	img, err := Build(cfg)
	if err != nil {
		return err
	}
	if err := mem.WriteAt(img.Data, img.Base); err != nil {
		return fmt.Errorf("acpi: write tables at %v: %w", img.Base, err)
	}
	return nil
}

// allocator hands out aligned addresses in [next, end).
type allocator struct{ next, end uint64 }

func (a *allocator) alloc(size int, align uint64) (guestmem.GuestAddr, error) {
	at := (a.next + align - 1) &^ (align - 1)
	if at < a.next || at+uint64(size) < at || at+uint64(size) > a.end {
		return 0, fmt.Errorf("%w: %d bytes at %#x, area ends at %#x", ErrNoSpace, size, at, a.end)
	}
	a.next = at + uint64(size)
	return guestmem.GuestAddr(at), nil
}

func build(cfg Config, start, end guestmem.GuestAddr) (Image, error) {
	madt, err := MADT(cfg)
	if err != nil {
		return Image{}, err
	}
	dsdt, err := DSDT(cfg)
	if err != nil {
		return Image{}, err
	}
	facs := FACS()
	// XSDT entries: FADT and MADT. The FADT points at the DSDT and FACS.
	const xsdtEntries = 2
	sizes := []struct {
		n     int
		align uint64
	}{
		{rsdpLen, rsdpAlign},
		{headerLen + xsdtEntries*xsdtEntryLen, tableAlign},
		{fadtLen, tableAlign},
		{facsLen, facsAlign},
		{len(madt), tableAlign},
		{len(dsdt), tableAlign},
	}
	al := allocator{next: uint64(start), end: uint64(end)}
	addr := make([]guestmem.GuestAddr, len(sizes))
	for i, s := range sizes {
		if addr[i], err = al.alloc(s.n, s.align); err != nil {
			return Image{}, err
		}
	}
	rsdpAt, xsdtAt, fadtAt, facsAt, madtAt, dsdtAt := addr[0], addr[1], addr[2], addr[3], addr[4], addr[5]
	fadt, err := FADT(cfg, dsdtAt, facsAt)
	if err != nil {
		return Image{}, err
	}
	img := Image{Base: start, Data: make([]byte, al.next-uint64(start)), RSDP: rsdpAt}
	for _, p := range []struct {
		at guestmem.GuestAddr
		b  []byte
	}{
		{rsdpAt, RSDP(xsdtAt)},
		{xsdtAt, XSDT([]guestmem.GuestAddr{fadtAt, madtAt})},
		{fadtAt, fadt},
		{facsAt, facs},
		{madtAt, madt},
		{dsdtAt, dsdt},
	} {
		copy(img.Data[p.at-start:], p.b)
	}
	return img, nil
}
