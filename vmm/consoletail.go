package vmm

import (
	"strings"
	"sync"
)

// consoleTailBytes is how much of the serial console a Machine keeps, for
// the end of an Outcome and to recognise a guest kernel's panic.
const consoleTailBytes = 8 << 10

// consoleTail keeps the last consoleTailBytes the guest wrote to its
// console.
type consoleTail struct {
	mu  sync.Mutex
	buf []byte
}

func (c *consoleTail) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = append(c.buf, p...)
	// Trimmed only past twice the size, so a busy console does not copy
	// the tail on every write.
	if len(c.buf) > 2*consoleTailBytes {
		c.buf = append(c.buf[:0], c.buf[len(c.buf)-consoleTailBytes:]...)
	}
	return len(p), nil
}

// lines returns the last n lines, without carriage returns.
func (c *consoleTail) lines(n int) string {
	c.mu.Lock()
	s := strings.ReplaceAll(string(c.buf), "\r", "")
	c.mu.Unlock()
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

// panicMarker starts the line Linux prints when it panics (panic() in
// kernel/panic.c); with panic=-1 it then reboots at once, which alone
// would look like a clean reset.
const panicMarker = "Kernel panic - not syncing"

// panicLine returns the kernel's panic line if the console's tail holds
// one.
func (c *consoleTail) panicLine() (string, bool) {
	c.mu.Lock()
	s := string(c.buf)
	c.mu.Unlock()
	i := strings.LastIndex(s, panicMarker)
	if i < 0 {
		return "", false
	}
	line, _, _ := strings.Cut(s[i:], "\n")
	return strings.TrimRight(line, "\r"), true
}
