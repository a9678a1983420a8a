package vmm

import (
	"sync"

	"github.com/vmm-dev/vmm/devices/acpi"
	"github.com/vmm-dev/vmm/kvm"
)

// PCI INTx routing: the pins of the devices on bus 0 go to the IOAPIC inputs
// above the ISA IRQs, rotated by slot as a PCI-to-PCI bridge swizzles them,
// so neighbouring devices do not share a line. The DSDT's _PRT publishes the
// same table; the VMM also writes each function's GSI into its Interrupt
// Line register, as firmware does, for guests that read it there.
const (
	firstINTxGSI = 16
	intxGSIs     = kvm.IOAPICPins - firstINTxGSI
	pciSlots     = 32
	intxPins     = 4
)

// intxGSI is where pin (0 for INTA#) of device slot goes.
func intxGSI(slot, pin int) uint32 {
	return firstINTxGSI + uint32(slot+pin)%intxGSIs
}

// intxRoutes is intxGSI for every slot and pin, for the DSDT.
func intxRoutes() []acpi.INTxRoute {
	rs := make([]acpi.INTxRoute, 0, pciSlots*intxPins)
	for slot := range pciSlots {
		for pin := range intxPins {
			rs = append(rs, acpi.INTxRoute{Slot: uint8(slot), Pin: uint8(pin), GSI: intxGSI(slot, pin)})
		}
	}
	return rs
}

// intxLines drives the level-triggered IOAPIC inputs that functions share:
// a line is high while any function on it asserts its pin, so one function
// deasserting does not drop another's interrupt.
type intxLines struct {
	set func(gsi uint32, high bool) error

	mu       sync.Mutex
	asserted map[uint32]map[int]bool // GSI -> functions asserting it
}

func newINTxLines(set func(gsi uint32, high bool) error) *intxLines {
	return &intxLines{set: set, asserted: make(map[uint32]map[int]bool)}
}

// pin returns the function that device slot drives on its INTA#.
func (l *intxLines) pin(slot int) func(level bool) {
	gsi := intxGSI(slot, 0)
	return func(level bool) { l.drive(gsi, slot, level) }
}

func (l *intxLines) drive(gsi uint32, fn int, level bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fns := l.asserted[gsi]
	before := len(fns) > 0
	if level {
		if fns == nil {
			fns = make(map[int]bool)
			l.asserted[gsi] = fns
		}
		fns[fn] = true
	} else {
		delete(fns, fn)
	}
	if after := len(fns) > 0; after != before {
		l.set(gsi, after) // KVM_IRQ_LINE fails only on a VM without an irqchip
	}
}
