package acpi

import (
	"math/bits"
	"sync"
	"time"
)

// Register block sizes, as the FADT declares them.
const (
	PM1EventLen   = 4 // PM1a_STS (2 bytes) then PM1a_EN (2 bytes), §4.8.3.1
	PM1ControlLen = 2 // PM1a_CNT, §4.8.3.2.1
	PMTimerLen    = 4 // PM_TMR, §4.8.3.3
)

// Offsets inside the event block.
const (
	pm1StsOff = 0
	pm1EnOff  = 2
)

// PM1 status bits (§4.8.3.1.1); write 1 to clear. TMR_STS and the power
// button's PWRBTN_STS are the only ones ever set: there is no sleep
// button, RTC alarm or wake source.
const (
	pm1TmrSts    = 1 << 0
	pm1PwrBtnSts = 1 << 8
	pm1StsAll    = 0xFFFF // every bit is write-1-to-clear or reserved
)

// PM1 enable bits (§4.8.3.1.2), stored so the guest reads back what it
// wrote. Only the power button raises an SCI: TMR_STS is set only when
// the guest reads the registers (every 2^31 ticks, about 10 minutes), and
// Linux leaves TMR_EN clear.
const (
	pm1TmrEn         = 1 << 0
	pm1GblEn         = 1 << 5
	pm1PwrBtnEn      = 1 << 8
	pm1SlpBtnEn      = 1 << 9
	pm1RTCEn         = 1 << 10
	pm1PCIExpWakeDis = 1 << 14
	pm1EnMask        = pm1TmrEn | pm1GblEn | pm1PwrBtnEn | pm1SlpBtnEn | pm1RTCEn | pm1PCIExpWakeDis
)

// PM1 control bits (§4.8.3.2.1).
const (
	pm1SCIEn       = 1 << 0 // ACPI mode; always set, the FADT has no SMI_CMD
	pm1BMRld       = 1 << 1
	pm1GblRls      = 1 << 2 // write-only
	pm1SlpTypShift = 10
	pm1SlpTypMask  = 0x7 << pm1SlpTypShift
	pm1SlpEn       = 1 << 13 // write-only: enter the sleep state in SLP_TYP
	pm1CntStored   = pm1BMRld | pm1SlpTypMask
)

// PM timer (§4.8.3.3): 3.579545 MHz, 32 bits wide (FADT TMR_VAL_EXT).
const (
	pmTimerHz      = 3_579_545
	nsPerSecond    = 1_000_000_000
	pmTimerMSBBits = 31 // TMR_STS is set each time bit 31 toggles
)

// PM models the ACPI fixed-hardware registers the FADT points at: the
// PM1a event block, the PM1a control block, and the PM timer. Writing
// SLP_EN with SLP_TYP equal to the \_S5 value calls powerOff.
//
// Each block is a separate port-I/O device, since the FADT may place
// them anywhere: EventBlock, ControlBlock and TimerBlock.
type PM struct {
	clock    func() time.Duration
	powerOff func()
	start    time.Duration

	// sci drives the SCI line (the FADT's SCI_INT); nil until SetSCI.
	sci      func(level bool)
	sciLevel bool

	mu     sync.Mutex
	sts    uint16
	en     uint16
	cnt    uint16 // the stored PM1a_CNT bits (pm1CntStored)
	ticks  uint64 // highest timer count seen: the timer never runs back
	tmrMSB uint64 // ticks >> pmTimerMSBBits when TMR_STS was last updated
	off    bool   // powerOff was called
}

// NewPM returns the PM registers. clock returns a monotonic time (for
// example time.Since of a fixed instant); the PM timer counts from its
// value now. powerOff is called, without the device's lock held, the first
// time the guest requests S5; later requests are ignored. It may be nil.
func NewPM(clock func() time.Duration, powerOff func()) *PM {
	return &PM{clock: clock, powerOff: powerOff, start: clock()}
}

// SetSCI connects the SCI: level is called, without the device's lock,
// whenever the line changes. It is high while an enabled event's status
// is set (only the power button raises one).
func (p *PM) SetSCI(level func(bool)) {
	p.mu.Lock()
	p.sci = level
	p.mu.Unlock()
}

// PressPowerButton sets PWRBTN_STS, as the fixed-feature power button
// does (§4.8.2.2.1.1): a guest that enabled PWRBTN_EN gets an SCI and,
// Linux's ACPI button driver, a KEY_POWER event to shut down on.
func (p *PM) PressPowerButton() {
	p.mu.Lock()
	p.sts |= pm1PwrBtnSts
	p.mu.Unlock()
	p.updateSCI()
}

// updateSCI drives the SCI to what the status and enable bits say.
func (p *PM) updateSCI() {
	p.mu.Lock()
	level := p.sts&p.en&pm1PwrBtnSts != 0
	changed := level != p.sciLevel
	p.sciLevel = level
	sci := p.sci
	p.mu.Unlock()
	if changed && sci != nil {
		sci(level)
	}
}

// PMBlock is one of PM's register blocks as a port-I/O device.
type PMBlock struct {
	pm    *PM
	size  uint64
	read  func(*PM) uint32
	write func(pm *PM, v, mask uint32) bool // reports a power-off request
}

// EventBlock returns the PM1a_EVT device (PM1EventLen ports).
func (p *PM) EventBlock() *PMBlock {
	return &PMBlock{pm: p, size: PM1EventLen, read: (*PM).readEvent, write: (*PM).writeEvent}
}

// ControlBlock returns the PM1a_CNT device (PM1ControlLen ports).
func (p *PM) ControlBlock() *PMBlock {
	return &PMBlock{pm: p, size: PM1ControlLen, read: (*PM).readControl, write: (*PM).writeControl}
}

// TimerBlock returns the PM_TMR device (PMTimerLen ports, read-only).
func (p *PM) TimerBlock() *PMBlock {
	return &PMBlock{pm: p, size: PMTimerLen, read: (*PM).readTimer, write: nil}
}

// Read implements a port read of any width; bytes past the block read 0xFF.
func (b *PMBlock) Read(offset uint64, data []byte) {
	b.pm.mu.Lock()
	v := b.read(b.pm)
	b.pm.mu.Unlock()
	for i := range data {
		at := offset + uint64(i)
		if at < offset || at >= b.size {
			data[i] = 0xFF
			continue
		}
		data[i] = byte(v >> (8 * at))
	}
}

// Write implements a port write of any width; bytes past the block are
// ignored. The written bytes merge into the register, so a one-byte write
// to PM1a_CNT's high byte can request sleep, as on hardware.
func (b *PMBlock) Write(offset uint64, data []byte) {
	if b.write == nil {
		return
	}
	var v, mask uint32
	for i, c := range data {
		at := offset + uint64(i)
		if at < offset || at >= b.size {
			continue
		}
		v |= uint32(c) << (8 * at)
		mask |= 0xFF << (8 * at)
	}
	if mask == 0 {
		return
	}
	b.pm.mu.Lock()
	off := b.write(b.pm, v, mask)
	b.pm.mu.Unlock()
	b.pm.updateSCI() // a status cleared or an enable changed
	if off && b.pm.powerOff != nil {
		b.pm.powerOff()
	}
}

// tick brings the timer and TMR_STS up to date. Called with mu held.
func (p *PM) tick() {
	d := p.clock() - p.start
	if d < 0 {
		d = 0
	}
	// d * Hz / 1e9 without overflow: the high word stays below 2^22.
	hi, lo := bits.Mul64(uint64(d), pmTimerHz)
	t, _ := bits.Div64(hi, lo, nsPerSecond)
	if t > p.ticks {
		p.ticks = t
	}
	if msb := p.ticks >> pmTimerMSBBits; msb != p.tmrMSB {
		p.tmrMSB = msb
		p.sts |= pm1TmrSts
	}
}

func (p *PM) readEvent() uint32 {
	p.tick()
	return uint32(p.sts)<<(8*pm1StsOff) | uint32(p.en)<<(8*pm1EnOff)
}

func (p *PM) writeEvent(v, mask uint32) bool {
	p.tick()
	stsMask := uint16(mask >> (8 * pm1StsOff))
	p.sts &^= uint16(v>>(8*pm1StsOff)) & stsMask & pm1StsAll
	enMask := uint16(mask >> (8 * pm1EnOff))
	p.en = p.en&^enMask | uint16(v>>(8*pm1EnOff))&enMask&pm1EnMask
	return false
}

func (p *PM) readControl() uint32 {
	return uint32(p.cnt | pm1SCIEn)
}

func (p *PM) writeControl(v, mask uint32) bool {
	w := p.cnt&^uint16(mask) | uint16(v&mask)
	p.cnt = w & pm1CntStored
	if w&pm1SlpEn == 0 || (w&pm1SlpTypMask)>>pm1SlpTypShift != slpTypS5 || p.off {
		return false
	}
	p.off = true
	return true
}

func (p *PM) readTimer() uint32 {
	p.tick()
	return uint32(p.ticks)
}
