package devices

import (
	"bytes"
	"testing"
)

// FuzzSerialRegisters drives a Serial with arbitrary guest accesses and host
// input, four bytes per step: op, offset, value, size. After every step the
// IRQ line must match IIR and OUT2, and LSR.DR must match the queue; at the
// end out must hold exactly the bytes transmitted outside loopback, in order.
func FuzzSerialRegisters(f *testing.F) {
	f.Add([]byte{1, regMCR, mcrOUT2, 0, 1, regIER, ierTHRE, 0, 0, regIIR, 0, 0, 1, regTHR, 'a', 0})
	f.Add([]byte{2, 0, 40, 0, 1, regIER, ierRDA, 0, 1, regMCR, mcrOUT2 | mcrLOOP, 0, 0, regRBR, 0, 0})
	f.Fuzz(func(t *testing.T, prog []byte) {
		irq := &fakeIRQ{}
		out := &bytes.Buffer{}
		s := NewSerial(irq, out)
		var want []byte
		var lcr, mcr byte = defaultLCR, 0
		for len(prog) >= 4 {
			op, off, v, size := prog[0], uint64(prog[1]%(SerialPorts+2)), prog[2], []int{1, 2, 4}[prog[3]%3]
			prog = prog[4:]
			switch op % 4 {
			case 0:
				s.Read(off, make([]byte, size))
			case 1:
				data := bytes.Repeat([]byte{v}, size)
				for i := range data {
					switch off + uint64(i) {
					case regTHR:
						if lcr&lcrDLAB == 0 && mcr&mcrLOOP == 0 {
							want = append(want, v)
						}
					case regLCR:
						lcr = v
					case regMCR:
						mcr = v
					}
				}
				s.Write(off, data)
			case 2:
				s.QueueInput(bytes.Repeat([]byte{v}, int(off)*int(v)))
			case 3:
				s.Flush()
			}
			checkSerialInvariants(t, s, irq)
		}
		s.Flush()
		if !bytes.Equal(out.Bytes(), want) {
			t.Fatalf("out = %q, want %q", out.Bytes(), want)
		}
	})
}

func checkSerialInvariants(t *testing.T, s *Serial, irq *fakeIRQ) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.interruptID()
	wantHigh := s.mcr&mcrOUT2 != 0 && id != iirNoInt
	if irq.high() != wantHigh {
		t.Fatalf("IRQ high = %v, want %v (IIR %#x, MCR %#x)", irq.high(), wantHigh, id, s.mcr)
	}
	switch id {
	case iirNoInt, iirMSI, iirTHRI, iirRDI, iirRLSI:
	default:
		t.Fatalf("IIR id %#x is not a 16550A value", id)
	}
	if s.rxLen < 0 || s.rxLen > rxCap || (s.lsr()&lsrDR != 0) != (s.rxLen > 0) {
		t.Fatalf("rxLen = %d, LSR = %#x: DR inconsistent", s.rxLen, s.lsr())
	}
	if s.ier&^ierMask != 0 || s.mcr&^mcrMask != 0 {
		t.Fatalf("IER %#x or MCR %#x has bits the chip does not store", s.ier, s.mcr)
	}
}
