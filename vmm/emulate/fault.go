package emulate

import "fmt"

// Exception vectors a Fault names (SDM vol. 3, table 6-1).
const (
	VectorTS = 10 // invalid TSS
	VectorNP = 11 // segment not present
	VectorSS = 12 // stack-segment fault
	VectorGP = 13 // general protection
	VectorPF = 14 // page fault
)

// Fault is a guest-controlled condition under which the CPU would have
// raised an exception instead of completing the instruction: a bad gate, a
// missing descriptor, an unmapped stack. Step does not deliver it; the VMM
// reports it and ends the run, as it would have for the emulation failure.
type Fault struct {
	Mnemonic string
	Vector   uint8
	Reason   string
}

func (f *Fault) Error() string {
	return fmt.Sprintf("emulate %s: %s: %s", f.Mnemonic, vectorName(f.Vector), f.Reason)
}

func vectorName(v uint8) string {
	switch v {
	case VectorTS:
		return "#TS"
	case VectorNP:
		return "#NP"
	case VectorSS:
		return "#SS"
	case VectorGP:
		return "#GP"
	case VectorPF:
		return "#PF"
	}
	return fmt.Sprintf("vector %d", v)
}

// faultf builds a Fault; the mnemonic is filled in by the instruction that
// returns it.
func faultf(vector uint8, format string, args ...any) *Fault {
	return &Fault{Vector: vector, Reason: fmt.Sprintf(format, args...)}
}

// named sets the mnemonic of a Fault from below, leaving other errors as
// they are.
func named(mnemonic string, err error) error {
	if f, ok := err.(*Fault); ok && f.Mnemonic == "" {
		f.Mnemonic = mnemonic
	}
	return err
}
