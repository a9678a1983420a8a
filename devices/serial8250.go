package devices

import (
	"io"
	"sync"
	"time"
)

// Serial is an 8250/16550A UART as seen through its eight ports: enough of
// the datasheet for Linux's 8250 driver to probe it as a 16550A and run an
// interrupt-driven console on it.
//
// Transmission is instantaneous: THR and the transmitter are always empty
// again by the time the guest looks, so LSR.THRE and LSR.TEMT always read 1
// and a THRE interrupt is pending again right after each THR write.
//
// Output is buffered; see Flush for when it reaches the writer. Input comes
// from the host through QueueInput into a bounded queue: the 16-byte receive
// FIFO plus a 4 KiB backlog that stands for bytes still on the wire.
type Serial struct {
	irq        IRQLine
	out        io.Writer
	flushDelay time.Duration
	afterFunc  AfterFunc

	mu sync.Mutex
	// Registers (16550A datasheet names).
	ier      byte
	lcr      byte
	mcr      byte
	scr      byte
	dll      byte
	dlm      byte
	lsrErr   byte // OE/PE/FE/BI latched until LSR is read
	msrDelta byte // DCTS/DDSR/TERI/DDCD latched until MSR is read
	fifoOn   bool // FCR0
	// thrPending is the THRE interrupt condition: set when THR becomes
	// empty (after a write, or IER.THRE going 0->1), cleared by a THR
	// write or by an IIR read that reports it.
	thrPending bool
	irqHigh    bool // level last sent to irq
	// lastLSR is set while the latest register access was an LSR read: a
	// second LSR read in a row means the guest is spinning (waiting for
	// input), which is the idle moment to flush output.
	lastLSR bool

	rx     [rxCap]byte // ring: the receive FIFO, then the host backlog
	rxHead int
	rxLen  int
	// roomWait is closed when bytes leave rx; nil when nobody waits.
	roomWait chan struct{}

	tx        []byte      // output not yet written to out
	stopFlush func() bool // the armed delayed flush, if any

	stats SerialStats
}

// SerialStats counts what a Serial did; errors are counted, never fatal.
type SerialStats struct {
	TXBytes     uint64 // bytes the guest transmitted to out
	RXBytes     uint64 // host bytes the guest read
	WriteErrors uint64 // failed writes to out (their bytes are dropped)
	IRQErrors   uint64 // failed IRQLine.SetLevel calls
	Overruns    uint64 // loopback bytes lost to a full receive FIFO
}

// NewSerial returns a UART in its reset state that raises irq and transmits
// to out. Options tune output buffering.
func NewSerial(irq IRQLine, out io.Writer, opts ...SerialOption) *Serial {
	s := &Serial{
		irq: irq,
		out: out,
		lcr: defaultLCR,
		dll: defaultDivisor & 0xFF,
		dlm: defaultDivisor >> 8,
		tx:  make([]byte, 0, txBufSize),
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Read implements a port read at offset from the base port. A wider access
// reads consecutive registers, as an ISA bus splits it.
func (s *Serial) Read(offset uint64, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range data {
		off := offset + uint64(i)
		if off == regLSR {
			if s.lastLSR {
				s.flush()
			}
			s.lastLSR = true
		} else {
			s.lastLSR = false
		}
		data[i] = s.readReg(off)
	}
	s.updateIRQ()
}

// Write implements a port write at offset from the base port.
func (s *Serial) Write(offset uint64, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastLSR = false
	for i, v := range data {
		s.writeReg(offset+uint64(i), v)
	}
	s.updateIRQ()
}

func (s *Serial) dlab() bool { return s.lcr&lcrDLAB != 0 }

func (s *Serial) readReg(off uint64) byte {
	switch off {
	case regRBR: // == regDLL
		if s.dlab() {
			return s.dll
		}
		return s.popRX()
	case regIER: // == regDLM
		if s.dlab() {
			return s.dlm
		}
		return s.ier
	case regIIR:
		return s.readIIR()
	case regLCR:
		return s.lcr
	case regMCR:
		return s.mcr
	case regLSR:
		v := s.lsr()
		s.lsrErr = 0 // reading LSR clears the error bits and the RLS interrupt
		return v
	case regMSR:
		v := s.modemLines() | s.msrDelta
		s.msrDelta = 0 // reading MSR clears the deltas and the MS interrupt
		return v
	case regSCR:
		return s.scr
	}
	return 0xFF // nothing drives the bus
}

func (s *Serial) writeReg(off uint64, v byte) {
	switch off {
	case regTHR: // == regDLL
		if s.dlab() {
			s.dll = v
			return
		}
		s.transmit(v)
	case regIER: // == regDLM
		if s.dlab() {
			s.dlm = v
			return
		}
		s.writeIER(v)
	case regFCR:
		s.writeFCR(v)
	case regLCR:
		s.lcr = v
	case regMCR:
		old := s.modemLines()
		s.mcr = v & mcrMask
		s.msrDelta |= modemDeltas(old, s.modemLines())
	case regSCR:
		s.scr = v
	}
	// LSR and MSR writes are factory test modes; ignored.
}

// writeIER stores the enables. Turning ETBEI on while THR is empty makes a
// THRE interrupt pending even if an IIR read had cleared it: Linux's startup
// test (UART_BUG_THRE, UART_BUG_TXEN) and Windows rely on it, as QEMU notes.
func (s *Serial) writeIER(v byte) {
	v &= ierMask
	if (s.ier^v)&ierTHRE != 0 {
		s.thrPending = v&ierTHRE != 0
	}
	s.ier = v
	// Linux writes IER at the end of every console write and when its
	// transmit queue drains (stop_tx): the guest is idle, so flush.
	s.flush()
}

// writeFCR implements FCR0 (changing it clears both FIFOs) and the
// self-clearing FCR1/FCR2. The trigger level does not matter when bytes
// arrive one host read at a time, so RDA is reported whenever DR is set.
func (s *Serial) writeFCR(v byte) {
	on := v&fcrEnable != 0
	if on != s.fifoOn {
		s.fifoOn = on
		s.clearRX()
		return
	}
	if on && v&fcrClearRX != 0 {
		s.clearRX()
	}
	// fcrClearTX: transmitted bytes have already left; nothing to drop.
}

// transmit handles a THR write: the THRE interrupt clears, the byte leaves
// at once, and THRE is pending again, so the line pulses and an
// edge-triggered ISA IRQ sees a new interrupt per byte, as on QEMU.
func (s *Serial) transmit(v byte) {
	s.thrPending = false
	s.updateIRQ()
	if s.mcr&mcrLOOP != 0 {
		s.loopback(v)
	} else {
		s.emit(v)
	}
	s.thrPending = s.ier&ierTHRE != 0
}

// loopback feeds a transmitted byte to the receiver (MCR4). A byte that
// finds the receive FIFO full is lost with LSR.OE, as on the chip.
func (s *Serial) loopback(v byte) {
	if s.rxLen >= s.holdDepth() {
		s.lsrErr |= lsrOE
		s.stats.Overruns++
		return
	}
	s.pushRX([]byte{v})
}

// holdDepth is how many received bytes the chip itself can hold.
func (s *Serial) holdDepth() int {
	if s.fifoOn {
		return fifoDepth
	}
	return nonFIFOHoldSize
}

func (s *Serial) readIIR() byte {
	id := s.interruptID()
	if id == iirTHRI {
		s.thrPending = false // reading IIR clears THRE when it is the source
	}
	if s.fifoOn {
		id |= iirFIFOBits
	}
	return id
}

// interruptID returns the highest-priority enabled pending source in the
// order of the datasheet's interrupt table: RLS > RDA > THRE > MS.
func (s *Serial) interruptID() byte {
	switch {
	case s.ier&ierRLS != 0 && s.lsrErr != 0:
		return iirRLSI
	case s.ier&ierRDA != 0 && s.rxLen > 0:
		return iirRDI
	case s.ier&ierTHRE != 0 && s.thrPending:
		return iirTHRI
	case s.ier&ierMS != 0 && s.msrDelta != 0:
		return iirMSI
	}
	return iirNoInt
}

// irqLevel is the level of the IRQ pin: on PC boards OUT2 gates the UART's
// interrupt output, and Linux sets OUT2 before it expects interrupts.
func (s *Serial) irqLevel() bool {
	return s.mcr&mcrOUT2 != 0 && s.interruptID() != iirNoInt
}

// updateIRQ sends the level to the line when it changed. It runs under mu so
// that level changes reach the line in the order the state changed.
func (s *Serial) updateIRQ() {
	level := s.irqLevel()
	if level == s.irqHigh {
		return
	}
	s.irqHigh = level
	if err := s.irq.SetLevel(level); err != nil {
		s.stats.IRQErrors++
	}
}

func (s *Serial) lsr() byte {
	v := s.lsrErr | lsrTHRE | lsrTEMT
	if s.rxLen > 0 {
		v |= lsrDR
	}
	if s.fifoOn && s.lsrErr != 0 {
		v |= lsrFIFOErr
	}
	return v
}

// modemLines returns the upper MSR bits. In loopback the modem outputs are
// wired to the inputs (RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD), which
// Linux's autoconfig checks; otherwise a ready terminal is attached.
func (s *Serial) modemLines() byte {
	if s.mcr&mcrLOOP == 0 {
		return msrIdle
	}
	var v byte
	if s.mcr&mcrRTS != 0 {
		v |= msrCTS
	}
	if s.mcr&mcrDTR != 0 {
		v |= msrDSR
	}
	if s.mcr&mcrOUT1 != 0 {
		v |= msrRI
	}
	if s.mcr&mcrOUT2 != 0 {
		v |= msrDCD
	}
	return v
}

// modemDeltas returns the MSR delta bits for a change of the line states.
func modemDeltas(old, cur byte) byte {
	changed := old ^ cur
	var d byte
	if changed&msrCTS != 0 {
		d |= msrDCTS
	}
	if changed&msrDSR != 0 {
		d |= msrDDSR
	}
	if old&msrRI != 0 && cur&msrRI == 0 {
		d |= msrTERI
	}
	if changed&msrDCD != 0 {
		d |= msrDDCD
	}
	return d
}
