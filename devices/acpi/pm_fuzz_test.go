package acpi

import (
	"testing"
	"time"
)

// FuzzPMRegisters drives the PM blocks with arbitrary accesses, four bytes
// per step: op, offset, value, size. Op picks a read or write on one of the
// three blocks, or advances the clock. Nothing may panic, powerOff runs at
// most once, SLP_EN never reads back, SCI_EN always does, and the timer
// only moves forward (modulo 2^32) while the clock does.
func FuzzPMRegisters(f *testing.F) {
	f.Add([]byte{3, 0, 0x14, 1, 4, 1, byte(slp(slpTypS5) >> 8), 0})
	f.Add([]byte{6, 0, 200, 0, 1, 0, 0xFF, 1, 2, 0, 0, 2, 0, 2, 0xFF, 1})
	f.Fuzz(func(t *testing.T, prog []byte) {
		r := newPMRig()
		blocks := []*PMBlock{r.evt, r.cnt, r.tmr}
		var lastTimer uint64
		for len(prog) >= 4 {
			op, off, v, size := prog[0], uint64(prog[1]%6), prog[2], []int{1, 2, 4}[prog[3]%3]
			prog = prog[4:]
			data := make([]byte, size)
			switch op % 7 {
			case 0, 1, 2:
				blocks[op%7].Read(off, data)
			case 3, 4, 5:
				for i := range data {
					data[i] = v
				}
				blocks[op%7-3].Write(off, data)
			case 6:
				r.clock.now += time.Duration(v) * 100 * time.Millisecond
			}
			if cnt := read16(r.cnt, 0); cnt&pm1SlpEn != 0 || cnt&pm1SCIEn == 0 {
				t.Fatalf("PM1a_CNT = %#x", cnt)
			}
			// The clock advances at most 25.5 s a step: far less than a wrap.
			now := uint64(readTimer(r.tmr))
			if now < lastTimer && lastTimer-now < 1<<31 {
				t.Fatalf("timer ran back from %d to %d", lastTimer, now)
			}
			lastTimer = now
		}
		if r.offs > 1 {
			t.Fatalf("powerOff called %d times", r.offs)
		}
	})
}
