package vmm

import (
	"slices"
	"testing"
)

func TestINTxGSI_RotatesOverPCIInputs(t *testing.T) {
	for slot := range pciSlots {
		for pin := range intxPins {
			g := intxGSI(slot, pin)
			if g < 16 || g > 23 {
				t.Fatalf("slot %d pin %d -> GSI %d, want 16..23", slot, pin, g)
			}
		}
	}
	if intxGSI(1, 0) == intxGSI(2, 0) {
		t.Error("neighbouring slots share INTA#'s GSI")
	}
	if got := len(intxRoutes()); got != pciSlots*intxPins {
		t.Errorf("%d routes, want %d", got, pciSlots*intxPins)
	}
}

// A shared line stays high until the last function on it deasserts, and
// only edges reach KVM.
func TestINTxLines_SharedLevel(t *testing.T) {
	type call struct {
		gsi  uint32
		high bool
	}
	var calls []call
	l := newINTxLines(func(gsi uint32, high bool) error {
		calls = append(calls, call{gsi, high})
		return nil
	})
	a, b := l.pin(1), l.pin(1+intxGSIs) // the same GSI
	a(true)
	b(true)
	a(true)
	a(false)
	b(false)
	b(false)
	want := []call{{17, true}, {17, false}}
	if !slices.Equal(calls, want) {
		t.Errorf("KVM_IRQ_LINE calls %v, want %v", calls, want)
	}
}
