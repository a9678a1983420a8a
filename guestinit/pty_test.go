package guestinit

import (
	"io"
	"os"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/guestinit/protocol"
	"golang.org/x/sys/unix"
)

// openTestTerminal opens a terminal in this machine's devpts.
func openTestTerminal(t *testing.T, size *protocol.TerminalSize) *terminal {
	t.Helper()
	term, err := openTerminal("/dev/pts", size)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	return term
}

func slaveSize(t *testing.T, term *terminal) (rows, cols uint16) {
	t.Helper()
	ws, err := unix.IoctlGetWinsize(int(term.slave.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		t.Fatal(err)
	}
	return ws.Row, ws.Col
}

func TestTerminal_InitialSizeThenResize(t *testing.T) {
	term := openTestTerminal(t, &protocol.TerminalSize{Rows: 24, Cols: 80})
	defer term.close()
	if r, c := slaveSize(t, term); r != 24 || c != 80 {
		t.Errorf("initial size %dx%d, want 24x80", r, c)
	}
	if err := term.resize(50, 132); err != nil {
		t.Fatal(err)
	}
	if r, c := slaveSize(t, term); r != 50 || c != 132 {
		t.Errorf("after resize %dx%d, want 50x132", r, c)
	}
}

func TestTerminal_Nil_ResizeIsNoOp(t *testing.T) {
	var term *terminal
	if err := term.resize(1, 2); err != nil {
		t.Errorf("resize without a terminal: %v", err)
	}
}

// What is written to the slave before it closes all comes out, then the
// copy ends at the master's EIO, and drain returns without error; a
// resize after that is dropped quietly.
func TestTerminal_DrainDeliversEverything(t *testing.T) {
	term := openTestTerminal(t, nil)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := make(chan []byte)
	go func() { b, _ := io.ReadAll(r); got <- b }()
	term.copy(nil, w)
	if _, err := term.slave.WriteString("last words\n"); err != nil {
		t.Fatal(err)
	}
	if err := term.drain(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if b := <-got; string(b) != "last words\r\n" {
		t.Errorf("output %q, want %q", b, "last words\r\n")
	}
	if err := term.resize(1, 2); err != nil {
		t.Errorf("resize after the run: %v, want it dropped", err)
	}
}
