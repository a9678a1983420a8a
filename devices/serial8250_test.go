package devices

import (
	"bytes"
	"slices"
	"testing"
)

func TestSerial_THRWrite_ReachesOutOnFlush(t *testing.T) {
	s, _, out := newTestSerial(t)
	wr(s, regTHR, 'A')
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "A" {
		t.Fatalf("out = %q, want %q", got, "A")
	}
}

func TestSerial_EnableTHRE_RaisesIRQ_IIRReadClears(t *testing.T) {
	s, irq, _ := newTestSerial(t)
	wr(s, regMCR, mcrOUT2)
	wr(s, regIER, ierTHRE)
	if !irq.high() {
		t.Fatal("IRQ low after enabling THRE, want high")
	}
	if got := rd(s, regIIR); got != iirTHRI {
		t.Fatalf("IIR = %#x, want THRI %#x", got, iirTHRI)
	}
	if irq.high() {
		t.Fatal("IRQ high after IIR read, want low")
	}
	if got := rd(s, regIIR); got != iirNoInt {
		t.Fatalf("second IIR = %#x, want NO_INT", got)
	}
}

// Linux's UART_BUG_THRE test: THRE must come back when ETBEI is toggled.
func TestSerial_ToggleTHRE_ReassertsInterrupt(t *testing.T) {
	s, _, _ := newTestSerial(t)
	wr(s, regIER, ierTHRE)
	rd(s, regIIR)
	wr(s, regIER, 0)
	wr(s, regIER, ierTHRE)
	if got := rd(s, regIIR); got != iirTHRI {
		t.Fatalf("IIR = %#x, want THRI", got)
	}
}

func TestSerial_THRWrite_PulsesIRQ(t *testing.T) {
	s, irq, _ := newTestSerial(t)
	wr(s, regMCR, mcrOUT2)
	wr(s, regIER, ierTHRE)
	wr(s, regTHR, 'x')
	if got, want := irq.history(), []bool{true, false, true}; !slices.Equal(got, want) {
		t.Fatalf("levels = %v, want %v", got, want)
	}
}

func TestSerial_OUT2Clear_KeepsIRQLow(t *testing.T) {
	s, irq, _ := newTestSerial(t)
	wr(s, regIER, ierTHRE|ierRDA)
	s.QueueInput([]byte("x"))
	if irq.high() || len(irq.history()) != 0 {
		t.Fatalf("levels = %v without OUT2, want none", irq.history())
	}
	wr(s, regMCR, mcrOUT2)
	if !irq.high() {
		t.Fatal("IRQ low after setting OUT2 with a pending interrupt")
	}
}

func TestSerial_RX_DataReadyInterruptAndOrder(t *testing.T) {
	s, irq, _ := newTestSerial(t)
	wr(s, regMCR, mcrOUT2)
	wr(s, regIER, ierRDA)
	if n := s.QueueInput([]byte("hi")); n != 2 {
		t.Fatalf("QueueInput accepted %d, want 2", n)
	}
	if rd(s, regLSR)&lsrDR == 0 || !irq.high() {
		t.Fatal("want LSR.DR and IRQ high after input")
	}
	if got := rd(s, regIIR); got != iirRDI {
		t.Fatalf("IIR = %#x, want RDI", got)
	}
	got := []byte{rd(s, regRBR), rd(s, regRBR)}
	if string(got) != "hi" {
		t.Fatalf("RBR gave %q, want %q", got, "hi")
	}
	if rd(s, regLSR)&lsrDR != 0 || irq.high() {
		t.Fatal("want LSR.DR clear and IRQ low once drained")
	}
}

func TestSerial_IIR_Priority(t *testing.T) {
	s, _, _ := newTestSerial(t)
	wr(s, regFCR, fcrEnable)
	wr(s, regMCR, mcrLOOP) // MSR deltas pending (lines changed)
	for range fifoDepth + 1 {
		wr(s, regTHR, 'o') // the last one overruns: LSR.OE
	}
	wr(s, regIER, ierRLS|ierRDA|ierTHRE|ierMS)
	want := []byte{iirRLSI, iirRDI, iirTHRI, iirMSI, iirNoInt}
	clear := []func(){
		func() { rd(s, regLSR) },
		func() {
			for rd(s, regLSR)&lsrDR != 0 {
				rd(s, regRBR)
			}
		},
		func() {}, // the IIR read itself clears THRI
		func() { rd(s, regMSR) },
		func() {},
	}
	for i, w := range want {
		if got := rd(s, regIIR) &^ iirFIFOBits; got != w {
			t.Fatalf("step %d: IIR = %#x, want %#x", i, got, w)
		}
		clear[i]()
	}
}

func TestSerial_DivisorLatch_ReadWrite(t *testing.T) {
	s, _, _ := newTestSerial(t)
	wr(s, regIER, 0x05)
	wr(s, regLCR, lcrDLAB|0x03)
	if dll, dlm := rd(s, regDLL), rd(s, regDLM); dll != defaultDivisor || dlm != 0 {
		t.Fatalf("reset divisor = %#x/%#x, want %#x/0", dll, dlm, defaultDivisor)
	}
	wr(s, regDLL, 0x01)
	wr(s, regDLM, 0x02)
	if dll, dlm := rd(s, regDLL), rd(s, regDLM); dll != 0x01 || dlm != 0x02 {
		t.Fatalf("divisor = %#x/%#x, want 0x01/0x02", dll, dlm)
	}
	wr(s, regLCR, 0x03)
	if ier := rd(s, regIER); ier != 0x05 {
		t.Fatalf("IER = %#x after DLAB off, want 0x05 (untouched by DLM writes)", ier)
	}
	if got := s.Stats().TXBytes; got != 0 {
		t.Fatalf("DLL write transmitted %d bytes", got)
	}
}

// Linux's autoconfig loopback check: MCR = LOOP|OUT2|RTS must read MSR
// upper bits DCD|CTS.
func TestSerial_Loopback_ModemLinesAndData(t *testing.T) {
	s, _, out := newTestSerial(t)
	wr(s, regMCR, mcrLOOP|mcrOUT2|mcrRTS)
	if got := rd(s, regMSR) & 0xF0; got != msrDCD|msrCTS {
		t.Fatalf("MSR = %#x, want %#x", got, msrDCD|msrCTS)
	}
	wr(s, regTHR, 'Z')
	if got := rd(s, regRBR); got != 'Z' {
		t.Fatalf("RBR = %q, want 'Z'", got)
	}
	if err := s.Flush(); err != nil || out.Len() != 0 {
		t.Fatalf("loopback byte reached out: %q (err %v)", out.String(), err)
	}
	wr(s, regMCR, 0)
	if got := rd(s, regMSR) & 0xF0; got != msrIdle {
		t.Fatalf("MSR = %#x outside loopback, want %#x", got, msrIdle)
	}
}

func TestSerial_Loopback_OverrunSetsOE(t *testing.T) {
	s, _, _ := newTestSerial(t)
	wr(s, regMCR, mcrLOOP)
	wr(s, regTHR, '1')
	wr(s, regTHR, '2') // FIFOs off: one byte of room
	if got := rd(s, regLSR); got&lsrOE == 0 {
		t.Fatalf("LSR = %#x, want OE", got)
	}
	if got := rd(s, regLSR); got&lsrOE != 0 {
		t.Fatalf("LSR = %#x after read, want OE cleared", got)
	}
}

func TestSerial_Scratch(t *testing.T) {
	s, _, _ := newTestSerial(t)
	wr(s, regSCR, 0xA5)
	if got := rd(s, regSCR); got != 0xA5 {
		t.Fatalf("SCR = %#x, want 0xA5", got)
	}
}

func TestSerial_IER_UpperBitsReadZero(t *testing.T) {
	s, _, _ := newTestSerial(t)
	wr(s, regIER, 0xFF)
	if got := rd(s, regIER); got != ierMask {
		t.Fatalf("IER = %#x, want %#x", got, ierMask)
	}
}

func TestSerial_FCR_FIFOBitsAndClear(t *testing.T) {
	s, _, _ := newTestSerial(t)
	if got := rd(s, regIIR); got != iirNoInt {
		t.Fatalf("IIR = %#x with FIFOs off, want %#x", got, iirNoInt)
	}
	wr(s, regFCR, fcrEnable)
	if got := rd(s, regIIR); got != iirFIFOBits|iirNoInt {
		t.Fatalf("IIR = %#x with FIFOs on, want %#x", got, iirFIFOBits|iirNoInt)
	}
	s.QueueInput([]byte("abc"))
	wr(s, regFCR, fcrEnable|fcrClearRX|fcrClearTX)
	if rd(s, regLSR)&lsrDR != 0 {
		t.Fatal("LSR.DR set after clearing the receive FIFO")
	}
	wr(s, regFCR, 0)
	if got := rd(s, regIIR); got != iirNoInt {
		t.Fatalf("IIR = %#x after disabling FIFOs, want %#x", got, iirNoInt)
	}
}

func TestSerial_ClearRX_KeepsBacklog(t *testing.T) {
	s, _, _ := newTestSerial(t)
	s.QueueInput(bytes.Repeat([]byte{'a'}, fifoDepth))
	s.QueueInput([]byte("z"))
	wr(s, regFCR, fcrEnable) // FCR0 changes: both FIFOs cleared
	if got := rd(s, regRBR); got != 'z' {
		t.Fatalf("RBR = %q after clear, want the backlog byte 'z'", got)
	}
}

func TestSerial_UnknownOffsets_Ignored(t *testing.T) {
	s, _, out := newTestSerial(t)
	wr(s, SerialPorts, 'q')
	if got := rd(s, SerialPorts+3); got != 0xFF {
		t.Fatalf("read past the registers = %#x, want 0xFF", got)
	}
	if err := s.Flush(); err != nil || out.Len() != 0 {
		t.Fatalf("out = %q, want nothing", out.String())
	}
}

func TestSerial_WideAccess_SplitsIntoBytes(t *testing.T) {
	s, _, _ := newTestSerial(t)
	s.Write(regSCR-1, []byte{0, 0x5A}) // MSR (ignored), then SCR
	data := make([]byte, 2)
	s.Read(regMSR, data)
	if data[1] != 0x5A {
		t.Fatalf("wide read = % x, want SCR 0x5a second", data)
	}
}

// The register reads Linux's autoconfig uses to classify the port: IER keeps
// exactly its low four bits, FCR0 shows as IIR 0xC0 (16550A), no 64-byte
// FIFO bit (not a 16750) and no EFR behind LCR 0xBF (not a 16650).
func TestSerial_LinuxAutoconfig_Sees16550A(t *testing.T) {
	s, _, _ := newTestSerial(t)
	wr(s, regIER, 0)
	if got := rd(s, regIER); got != 0 {
		t.Fatalf("IER = %#x, want 0", got)
	}
	wr(s, regFCR, fcrEnable|0x20)
	if got := rd(s, regIIR) & 0xE0; got != iirFIFOBits {
		t.Fatalf("IIR FIFO bits = %#x, want %#x", got, iirFIFOBits)
	}
	wr(s, regLCR, 0xBF)
	if got := rd(s, regIIR); got == 0 {
		t.Fatal("EFR (offset 2 under LCR 0xBF) reads 0, Linux would probe for a 16650")
	}
}
