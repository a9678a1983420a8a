package vmm

import (
	"fmt"
	"time"

	"github.com/vmm-dev/vmm/devices/acpi"
	"github.com/vmm-dev/vmm/guestmem"
)

// ACPI placement: the PM register blocks on the port-I/O bus, the SCI on
// ISA IRQ 9 as PC firmware has it, and the PCI MMIO window the DSDT's host
// bridge describes (the 32-bit hole below the IOAPIC).
const (
	pm1aEvtPort     = 0x600
	pm1aCntPort     = 0x604
	pmTmrPort       = 0x608
	sciIRQ          = 9
	pciMMIOWindowLo = uint32(guestmem.MMIOHoleStart)
	pciMMIOWindowHi = 0xFEBF_FFFF
)

// setupACPI writes the ACPI tables (so guests find their CPUs and can power
// off) and places the PM registers, whose S5 request ends the run.
func (m *Machine) setupACPI() error {
	cfg := acpi.Config{
		CPUs:    m.cfg.CPUs,
		PM1aEvt: pm1aEvtPort, PM1aCnt: pm1aCntPort, PMTmr: pmTmrPort,
		SCI:         sciIRQ,
		PCIMMIOBase: pciMMIOWindowLo, PCIMMIOEnd: pciMMIOWindowHi,
		// The IOAPIC's ID follows the CPUs' local APIC IDs (0..CPUs-1).
		IOAPICID: uint8(m.cfg.CPUs),
		PCIINTx:  intxRoutes(),
	}
	if err := acpi.Write(m.mem, cfg); err != nil {
		return fmt.Errorf("write ACPI tables: %w", err)
	}
	start := time.Now()
	pm := acpi.NewPM(func() time.Duration { return time.Since(start) },
		func() { m.Stop(ReasonPowerOff, "ACPI S5 through PM1a_CNT") })
	// The SCI is level-triggered, active high (the MADT's override).
	pm.SetSCI(func(level bool) { m.vm.IRQLine(sciIRQ, level) })
	m.pm = pm
	for _, d := range []PIODevice{
		{Name: "acpi-pm1a-evt", Base: pm1aEvtPort, Size: acpi.PM1EventLen, Dev: pm.EventBlock()},
		{Name: "acpi-pm1a-cnt", Base: pm1aCntPort, Size: acpi.PM1ControlLen, Dev: pm.ControlBlock()},
		{Name: "acpi-pm-tmr", Base: pmTmrPort, Size: acpi.PMTimerLen, Dev: pm.TimerBlock()},
	} {
		if err := m.exits.pio.Insert(uint64(d.Base), uint64(d.Size), d.Name, d.Dev); err != nil {
			return err
		}
	}
	return nil
}

// PressPowerButton presses the ACPI power button: a guest that handles
// it (Linux with acpid, systemd, or guestinit) shuts down and powers off.
// A guest that ignores it keeps running.
func (m *Machine) PressPowerButton() {
	if m.pm != nil {
		m.pm.PressPowerButton()
	}
}
