package main

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/vmm-dev/vmm/internal/hostterm"
)

// console is the guest's serial input: stdin, in raw mode with the Ctrl-A
// escape when it is a terminal, passed through untouched otherwise.
type console struct {
	in      *os.File
	esc     *hostterm.Escaper // nil when stdin is not a terminal
	onQuit  func()
	undoRaw func() error
	once    sync.Once
	pending []byte // filtered input that did not fit the caller's buffer
}

func openConsole(stdin *os.File, stderr io.Writer) (*console, error) {
	c := &console{in: stdin}
	fd := int(stdin.Fd())
	if !hostterm.IsTerminal(fd) {
		return c, nil
	}
	restore, err := hostterm.MakeRaw(fd)
	if err != nil {
		return nil, fmt.Errorf("put the terminal in raw mode: %w", err)
	}
	c.undoRaw = restore
	c.esc = &hostterm.Escaper{Help: stderr}
	return c, nil
}

// Read returns guest input; the escape's quit stops the VM.
func (c *console) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	for {
		n, err := c.in.Read(p)
		if c.esc == nil || n == 0 {
			return n, err
		}
		out, quit := c.esc.Filter(p[:n])
		if quit && c.onQuit != nil {
			c.onQuit()
			return 0, io.EOF
		}
		if len(out) > 0 || err != nil {
			n := copy(p, out)
			c.pending = append(c.pending[:0], out[n:]...)
			return n, err
		}
	}
}

// restore puts the terminal back as it was; it is safe to call more than once.
func (c *console) restore() {
	c.once.Do(func() {
		if c.undoRaw != nil {
			c.undoRaw()
		}
	})
}
