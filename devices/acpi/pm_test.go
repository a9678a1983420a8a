package acpi

import (
	"encoding/binary"
	"testing"
	"time"
)

// fakeClock is a settable monotonic clock.
type fakeClock struct{ now time.Duration }

func (c *fakeClock) read() time.Duration { return c.now }

type pmRig struct {
	clock *fakeClock
	pm    *PM
	offs  int
	evt   *PMBlock
	cnt   *PMBlock
	tmr   *PMBlock
}

func newPMRig() *pmRig {
	r := &pmRig{clock: &fakeClock{now: 5 * time.Second}}
	r.pm = NewPM(r.clock.read, func() { r.offs++ })
	r.evt, r.cnt, r.tmr = r.pm.EventBlock(), r.pm.ControlBlock(), r.pm.TimerBlock()
	return r
}

func read16(d *PMBlock, off uint64) uint16 {
	b := make([]byte, 2)
	d.Read(off, b)
	return binary.LittleEndian.Uint16(b)
}

func write16(d *PMBlock, off uint64, v uint16) {
	d.Write(off, binary.LittleEndian.AppendUint16(nil, v))
}

func readTimer(d *PMBlock) uint32 {
	b := make([]byte, 4)
	d.Read(0, b)
	return binary.LittleEndian.Uint32(b)
}

func slp(typ uint16) uint16 { return typ<<pm1SlpTypShift | pm1SlpEn }

func TestPM_S5Write_CallsPowerOffOnce(t *testing.T) {
	r := newPMRig()
	write16(r.cnt, 0, slpTypS5<<pm1SlpTypShift) // Linux writes SLP_TYP first
	if r.offs != 0 {
		t.Fatal("powerOff called before SLP_EN")
	}
	write16(r.cnt, 0, slp(slpTypS5))
	write16(r.cnt, 0, slp(slpTypS5))
	if r.offs != 1 {
		t.Fatalf("powerOff called %d times, want 1", r.offs)
	}
}

func TestPM_S5HighByteWrite_CallsPowerOff(t *testing.T) {
	r := newPMRig()
	r.cnt.Write(1, []byte{byte(slp(slpTypS5) >> 8)})
	if r.offs != 1 {
		t.Fatalf("powerOff called %d times, want 1", r.offs)
	}
}

func TestPM_OtherSleepTypes_DoNotPowerOff(t *testing.T) {
	r := newPMRig()
	for typ := uint16(0); typ < 8; typ++ {
		if typ != slpTypS5 {
			write16(r.cnt, 0, slp(typ))
		}
	}
	write16(r.cnt, 0, slpTypS5<<pm1SlpTypShift) // S5 without SLP_EN
	if r.offs != 0 {
		t.Fatalf("powerOff called %d times, want 0", r.offs)
	}
}

func TestPM_Control_SCIEnSetSlpEnReadsZero(t *testing.T) {
	r := newPMRig()
	write16(r.cnt, 0, 3<<pm1SlpTypShift|pm1SlpEn|pm1GblRls)
	got := read16(r.cnt, 0)
	if want := uint16(3<<pm1SlpTypShift | pm1SCIEn); got != want {
		t.Errorf("PM1a_CNT = %#x, want %#x", got, want)
	}
}

func TestPM_Status_WriteOneToClear(t *testing.T) {
	r := newPMRig()
	// Run the timer across bit 31: TMR_STS sets.
	r.clock.now += 601 * time.Second
	if sts := read16(r.evt, pm1StsOff); sts&pm1TmrSts == 0 {
		t.Fatalf("PM1_STS = %#x after 2^31 ticks, want TMR_STS", sts)
	}
	write16(r.evt, pm1StsOff, 0) // writing 0 leaves it
	if sts := read16(r.evt, pm1StsOff); sts&pm1TmrSts == 0 {
		t.Fatal("writing 0 cleared TMR_STS")
	}
	write16(r.evt, pm1StsOff, pm1TmrSts)
	if sts := read16(r.evt, pm1StsOff); sts != 0 {
		t.Fatalf("PM1_STS = %#x after write-1-to-clear, want 0", sts)
	}
}

func TestPM_Enable_StoresDefinedBits(t *testing.T) {
	r := newPMRig()
	write16(r.evt, pm1EnOff, 0xFFFF)
	if got := read16(r.evt, pm1EnOff); got != pm1EnMask {
		t.Errorf("PM1_EN = %#x, want %#x", got, pm1EnMask)
	}
	b := make([]byte, 4) // a 32-bit access sees status then enable
	r.evt.Read(0, b)
	if got := binary.LittleEndian.Uint32(b); got != pm1EnMask<<16 {
		t.Errorf("PM1_EVT dword = %#x", got)
	}
}

func TestPM_Timer_MonotonicAtPMTimerRate(t *testing.T) {
	r := newPMRig()
	if got := readTimer(r.tmr); got != 0 {
		t.Fatalf("timer starts at %d, want 0", got)
	}
	r.clock.now += time.Second
	if got := readTimer(r.tmr); got != pmTimerHz {
		t.Fatalf("timer after 1 s = %d, want %d", got, pmTimerHz)
	}
	prev := readTimer(r.tmr)
	for _, step := range []time.Duration{time.Microsecond, 0, 3 * time.Millisecond, -2 * time.Second, time.Nanosecond} {
		r.clock.now += step
		got := readTimer(r.tmr)
		if got < prev {
			t.Fatalf("timer ran back from %d to %d (clock step %v)", prev, got, step)
		}
		prev = got
	}
}

func TestPM_Timer_WrapsAt32Bits(t *testing.T) {
	r := newPMRig()
	r.clock.now += time.Duration((1<<32)*nsPerSecond/pmTimerHz + 1) // just past 2^32 ticks
	if got := readTimer(r.tmr); got > pmTimerHz/1000 {
		t.Errorf("timer after 2^32 ticks = %d, want it wrapped near 0", got)
	}
}

func TestPM_OutOfRangeAccess_ReadsOnes(t *testing.T) {
	r := newPMRig()
	b := []byte{0, 0, 0, 0}
	r.cnt.Read(1, b)
	if b[1] != 0xFF || b[2] != 0xFF || b[3] != 0xFF {
		t.Errorf("bytes past PM1a_CNT = % x, want ff", b[1:])
	}
	r.tmr.Write(0, []byte{1, 2, 3, 4}) // read-only: ignored
	r.cnt.Write(^uint64(0), []byte{0xFF, 0xFF})
	if r.offs != 0 {
		t.Error("an out-of-range write powered off")
	}
}

// The power button sets PWRBTN_STS; the SCI is high while it is set and
// enabled, and drops when the guest clears the status (write 1) or the
// enable.
func TestPM_PowerButton_RaisesSCIWhileEnabledAndSet(t *testing.T) {
	r := newPMRig()
	var levels []bool
	r.pm.SetSCI(func(l bool) { levels = append(levels, l) })
	r.pm.PressPowerButton()
	if sts := read16(r.evt, 0); sts&pm1PwrBtnSts == 0 || len(levels) != 0 {
		t.Fatalf("status %#x, SCI %v: want PWRBTN_STS set and no SCI while disabled", sts, levels)
	}
	write16(r.evt, 2, pm1PwrBtnEn) // enable: the pending press now interrupts
	write16(r.evt, 0, pm1PwrBtnSts)
	write16(r.evt, 2, pm1PwrBtnEn)
	r.pm.PressPowerButton()
	write16(r.evt, 2, 0)
	if want := []bool{true, false, true, false}; len(levels) != 4 || levels[0] != want[0] || levels[1] != want[1] || levels[2] != want[2] || levels[3] != want[3] {
		t.Errorf("SCI levels %v, want %v", levels, want)
	}
	if sts := read16(r.evt, 0); sts&pm1PwrBtnSts == 0 {
		t.Errorf("status %#x: clearing the enable must not clear the status", sts)
	}
}
