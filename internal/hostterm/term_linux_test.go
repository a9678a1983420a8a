package hostterm

import (
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY returns the fd of a new pseudo-terminal's terminal side.
func openPTY(t *testing.T) int {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { ptm.Close() })
	fd := int(ptm.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	pts, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open pts: %v", err)
	}
	t.Cleanup(func() { pts.Close() })
	return int(pts.Fd())
}

func TestMakeRaw_PTY_RawThenRestored(t *testing.T) {
	fd := openPTY(t)
	if !IsTerminal(fd) {
		t.Fatal("IsTerminal(pty) = false")
	}
	before, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	restore, err := MakeRaw(fd)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if raw.Lflag&(unix.ECHO|unix.ICANON|unix.ISIG) != 0 || raw.Oflag&unix.OPOST != 0 || raw.Cc[unix.VMIN] != 1 {
		t.Fatalf("raw termios lflag %#x oflag %#x vmin %d: not raw", raw.Lflag, raw.Oflag, raw.Cc[unix.VMIN])
	}
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	after, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if *after != *before {
		t.Fatalf("termios after restore = %+v, want %+v", *after, *before)
	}
}

func TestMakeRaw_NotTerminal_NoOp(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	fd := int(r.Fd())
	if IsTerminal(fd) {
		t.Fatal("IsTerminal(pipe) = true")
	}
	restore, err := MakeRaw(fd)
	if err != nil || restore() != nil {
		t.Fatalf("MakeRaw(pipe) err = %v, want a no-op", err)
	}
}

func TestMakeRaw_BadFD_Error(t *testing.T) {
	if _, err := MakeRaw(-1); err == nil {
		t.Fatal("MakeRaw(-1) err = nil, want an error")
	}
}
