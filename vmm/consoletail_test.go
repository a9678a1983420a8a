package vmm

import (
	"strings"
	"testing"
)

func TestConsoleTail(t *testing.T) {
	var c consoleTail
	c.Write([]byte(strings.Repeat("filler line\r\n", 2000)))
	if _, ok := c.panicLine(); ok {
		t.Fatal("a panic line where there is none")
	}
	c.Write([]byte("[    1.0] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100\r\n[    1.1] ---[ end Kernel panic"))
	line, ok := c.panicLine()
	if !ok || line != "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100" {
		t.Errorf("panicLine = %q, %v", line, ok)
	}
	if got := c.lines(2); got != "[    1.0] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100\n[    1.1] ---[ end Kernel panic" {
		t.Errorf("lines(2) = %q", got)
	}
	if len(c.buf) > 2*consoleTailBytes {
		t.Errorf("kept %d bytes", len(c.buf))
	}
}
