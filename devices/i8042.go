package devices

import "sync"

// The i8042 keyboard controller's two ports. They are not adjacent (0x61 is
// the PIT speaker port in between), so the VMM maps two 1-byte ranges: one
// to I8042.DataPort and one to I8042.CommandPort.
const (
	I8042DataPort    = 0x60 // data: reads the output buffer, writes the input buffer
	I8042CommandPort = 0x64 // reads status, writes controller commands
)

// Status register bits (read on port 0x64).
const (
	i8042StatusOBF = 0x01 // output buffer full: a byte waits on port 0x60
	i8042StatusIBF = 0x02 // input buffer full: never, we consume at once
	i8042StatusSYS = 0x04 // system flag: self-test passed
	i8042StatusCMD = 0x08 // last input-buffer write was a command
)

// Controller commands (written to port 0x64).
const (
	i8042CmdReadCTR    = 0x20 // read the controller configuration byte
	i8042CmdWriteCTR   = 0x60 // the next data byte is the configuration byte
	i8042CmdSelfTest   = 0xAA // controller self-test; answers 0x55
	i8042CmdPulseReset = 0xFE // pulse output line 0: the CPU reset line
)

const (
	i8042SelfTestOK = 0x55
	// Configuration byte at reset: system flag and scancode translation,
	// no interrupts, since no keyboard or mouse is attached.
	i8042DefaultCTR = 0x44
)

// I8042 is a minimal i8042 controller. Its only job is the reset line that
// x86 Linux pulses on reboot (reboot=k, and the fallback of the default
// order); it answers just enough else for a probing driver not to stall:
// the status register shows an empty output buffer except right after a
// command that returns a byte (0x20 read CTR, 0xAA self-test), which the
// guest then reads from port 0x60. Every other command and data byte is
// ignored.
type I8042 struct {
	reset func()

	mu         sync.Mutex
	ctr        byte // controller configuration ("command") byte
	out        byte // output buffer
	outFull    bool // status OBF
	lastCmd    bool // status CMD
	pendingCmd byte // a command waiting for its data byte, or 0
}

// I8042Port is one of the controller's two ports as a port-I/O device.
type I8042Port struct {
	c    *I8042
	port uint16
}

// NewI8042 returns a controller that calls reset each time the guest writes
// command 0xFE. Linux may write it several times before the VM stops, so
// reset must be idempotent; it is called without the device's lock held.
func NewI8042(reset func()) *I8042 {
	return &I8042{reset: reset, ctr: i8042DefaultCTR}
}

// DataPort returns the device for port 0x60.
func (c *I8042) DataPort() *I8042Port { return &I8042Port{c: c, port: I8042DataPort} }

// CommandPort returns the device for port 0x64.
func (c *I8042) CommandPort() *I8042Port { return &I8042Port{c: c, port: I8042CommandPort} }

// Read implements a port read. Only offset 0 exists; the rest read 0xFF.
func (p *I8042Port) Read(offset uint64, data []byte) {
	for i := range data {
		data[i] = 0xFF
	}
	if offset != 0 || len(data) == 0 {
		return
	}
	if p.port == I8042DataPort {
		data[0] = p.c.readData()
	} else {
		data[0] = p.c.status()
	}
}

// Write implements a port write of data[0] at offset 0; others are ignored.
func (p *I8042Port) Write(offset uint64, data []byte) {
	if offset != 0 || len(data) == 0 {
		return
	}
	if p.port == I8042DataPort {
		p.c.writeData(data[0])
	} else {
		p.c.writeCommand(data[0])
	}
}

func (c *I8042) status() byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := byte(i8042StatusSYS)
	if c.outFull {
		v |= i8042StatusOBF
	}
	if c.lastCmd {
		v |= i8042StatusCMD
	}
	return v
}

func (c *I8042) readData() byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.outFull = false
	return c.out
}

func (c *I8042) writeData(v byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastCmd = false
	if c.pendingCmd == i8042CmdWriteCTR {
		c.ctr = v
	}
	c.pendingCmd = 0 // otherwise a keyboard command: no keyboard, ignored
}

func (c *I8042) writeCommand(v byte) {
	c.mu.Lock()
	c.lastCmd = true
	c.pendingCmd = 0
	switch v {
	case i8042CmdReadCTR:
		c.out, c.outFull = c.ctr, true
	case i8042CmdWriteCTR:
		c.pendingCmd = v
	case i8042CmdSelfTest:
		c.out, c.outFull = i8042SelfTestOK, true
	}
	c.mu.Unlock()
	if v == i8042CmdPulseReset && c.reset != nil {
		c.reset()
	}
}
