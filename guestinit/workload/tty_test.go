package workload

import (
	"fmt"
	"io"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY returns a pseudo-terminal's master and its slave.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slave.Close() })
	return master, slave
}

// With -t the terminal on stdin becomes the workload's controlling
// terminal, and the workload leads its session and foreground group, so
// ^C on the terminal reaches it and not guestinit.
func TestSupervise_TTY_ControllingTerminal(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		tty  bool
		want int
	}{
		{"with -t", true, 0},
		{"without -t or -i stdin is /dev/null", false, 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			master, slave := openPTY(t)
			spec := workloadSpec(t, "tty")
			spec.TTY = tt.tty
			s := newSupervisor(t, spec, Options{}, false)
			s.cmd.Stdin, s.cmd.Stdout = slave, slave
			go io.Copy(io.Discard, master) // a full terminal would block the workload
			if err := s.cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if r := s.wait(t); r.Status != tt.want || r.Err != "" {
				t.Errorf("Supervise = %d, %q; want %d (10: stdin no tty, 11: no controlling tty, 12: not foreground, 13: not session leader)",
					r.Status, r.Err, tt.want)
			}
		})
	}
}
