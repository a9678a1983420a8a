package devices

// Where the PC puts the first serial port; the VMM does the wiring.
const (
	COM1Base    = 0x3F8 // base I/O port of COM1
	COM1IRQ     = 4     // ISA IRQ of COM1
	SerialPorts = 8     // number of consecutive ports a Serial decodes
)

// Register offsets from the base port (16550A datasheet, "Register Summary").
// Offsets 0 and 1 are the divisor latch while LCR.DLAB is set; offset 2 reads
// IIR and writes FCR.
const (
	regRBR = 0 // receiver buffer (read, DLAB=0)
	regTHR = 0 // transmitter holding (write, DLAB=0)
	regDLL = 0 // divisor latch LSB (DLAB=1)
	regIER = 1 // interrupt enable (DLAB=0)
	regDLM = 1 // divisor latch MSB (DLAB=1)
	regIIR = 2 // interrupt identification (read)
	regFCR = 2 // FIFO control (write)
	regLCR = 3 // line control
	regMCR = 4 // modem control
	regLSR = 5 // line status
	regMSR = 6 // modem status
	regSCR = 7 // scratch
)

// IER bits.
const (
	ierRDA  = 0x01 // ERBFI: received data available
	ierTHRE = 0x02 // ETBEI: transmitter holding register empty
	ierRLS  = 0x04 // ELSI: receiver line status
	ierMS   = 0x08 // EDSSI: modem status
	ierMask = 0x0F // a 16550A reads the upper four bits as 0; Linux's probe checks it
)

// IIR values. Bit 0 clear means an interrupt is pending; bits 1-3 name the
// highest-priority source (datasheet table "Interrupt Control Functions").
const (
	iirNoInt    = 0x01 // no interrupt pending
	iirMSI      = 0x00 // modem status (lowest priority)
	iirTHRI     = 0x02 // transmitter holding register empty
	iirRDI      = 0x04 // received data available
	iirRLSI     = 0x06 // receiver line status (highest priority)
	iirFIFOBits = 0xC0 // both set while FCR0 enables the FIFOs
)

// FCR bits.
const (
	fcrEnable  = 0x01 // enable both FIFOs; changing it clears them
	fcrClearRX = 0x02 // clear the receive FIFO (self-clearing)
	fcrClearTX = 0x04 // clear the transmit FIFO (self-clearing)
)

// LCR bits. Word length, stop bits and parity do not matter to a byte stream.
const lcrDLAB = 0x80 // divisor latch access bit

// MCR bits.
const (
	mcrDTR  = 0x01
	mcrRTS  = 0x02
	mcrOUT1 = 0x04
	mcrOUT2 = 0x08 // gates the IRQ output on PC boards; Linux sets it
	mcrLOOP = 0x10 // local loopback
	mcrMask = 0x1F
)

// LSR bits.
const (
	lsrDR      = 0x01 // data ready
	lsrOE      = 0x02 // overrun error
	lsrPE      = 0x04 // parity error
	lsrFE      = 0x08 // framing error
	lsrBI      = 0x10 // break interrupt
	lsrTHRE    = 0x20 // transmitter holding register empty
	lsrTEMT    = 0x40 // transmitter empty
	lsrFIFOErr = 0x80 // error in receive FIFO
	lsrErrors  = lsrOE | lsrPE | lsrFE | lsrBI
)

// MSR bits: the upper four are line states, the lower four are deltas since
// the last MSR read.
const (
	msrDCTS   = 0x01
	msrDDSR   = 0x02
	msrTERI   = 0x04 // trailing edge of RI
	msrDDCD   = 0x08
	msrCTS    = 0x10
	msrDSR    = 0x20
	msrRI     = 0x40
	msrDCD    = 0x80
	msrDeltas = msrDCTS | msrDDSR | msrTERI | msrDDCD
)

// msrIdle is what the modem lines read outside loopback: a terminal that is
// present and ready, so getty and the tty layer do not wait for carrier.
const msrIdle = msrDCD | msrDSR | msrCTS

// Sizes of the model.
const (
	fifoDepth       = 16   // 16550A receive FIFO
	rxBacklog       = 4096 // host input accepted beyond the FIFO
	rxCap           = fifoDepth + rxBacklog
	txBufSize       = 4096 // output buffered before a forced flush
	defaultDivisor  = 12   // 9600 baud from a 1.8432 MHz clock
	defaultLCR      = 0x03 // 8 data bits, no parity, 1 stop bit
	nonFIFOHoldSize = 1    // a 16450 (FIFOs off) holds one received byte
)
