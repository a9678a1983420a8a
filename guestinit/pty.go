package guestinit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vmm-dev/vmm/guestinit/protocol"
	"github.com/vmm-dev/vmm/guestinit/workload"
	"golang.org/x/sys/unix"
)

// terminalDrainWait bounds the wait for a -t workload's last output once
// it has exited.
const terminalDrainWait = 5 * time.Second

// terminal is the pseudo-terminal of a -t run. The workload has the slave
// as stdin, stdout and stderr; guestinit copies the stdin port to the
// master and the master to the stdout port, and sets the window size on
// the master, which signals the workload SIGWINCH.
type terminal struct {
	master, slave *os.File
	output        chan struct{} // closed once the master's output is copied
	outputErr     error         // why copying ended; read after output closes

	mu     sync.Mutex // orders resizes before the master's close
	closed bool
}

// openTerminal opens a new pseudo-terminal in the devpts instance at
// ptsDir (the workload's own, so the slave is one of its /dev/pts) with
// the initial size, when known.
func openTerminal(ptsDir string, size *protocol.TerminalSize) (*terminal, error) {
	master, err := os.OpenFile(filepath.Join(ptsDir, "ptmx"), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("open a terminal: %w", err)
	}
	slave, err := openPeer(master)
	if err != nil {
		master.Close()
		return nil, fmt.Errorf("open a terminal: %w", err)
	}
	t := &terminal{master: master, slave: slave, output: make(chan struct{})}
	if size != nil {
		if err := t.resize(size.Rows, size.Cols); err != nil {
			t.close()
			return nil, err
		}
	}
	return t, nil
}

// openPeer unlocks master's slave and opens it through the master
// (TIOCGPTPEER, Linux 4.13), which needs no path and so cannot open
// another devpts instance's terminal.
func openPeer(master *os.File) (*os.File, error) {
	conn, err := master.SyscallConn()
	if err != nil {
		return nil, err
	}
	var fd uintptr
	var ioErr error
	err = conn.Control(func(m uintptr) {
		if ioErr = unix.IoctlSetPointerInt(int(m), unix.TIOCSPTLCK, 0); ioErr != nil {
			ioErr = fmt.Errorf("unlock: %w", ioErr)
			return
		}
		var errno unix.Errno
		fd, _, errno = unix.Syscall(unix.SYS_IOCTL, m, unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
		if errno != 0 {
			ioErr = fmt.Errorf("open the slave: %w", errno)
		}
	})
	if err = errors.Join(err, ioErr); err != nil {
		return nil, err
	}
	return os.NewFile(fd, "pty slave"), nil
}

// stdio is the workload's standard streams: the slave, all three.
func (t *terminal) stdio() workload.Stdio {
	return workload.Stdio{Stdin: t.slave, Stdout: t.slave, Stderr: t.slave}
}

// copy starts copying in (nil without -i) to the master and the master to
// out.
func (t *terminal) copy(in io.Reader, out io.Writer) {
	go func() {
		// Reading the master fails with EIO once every slave descriptor is
		// closed and what the workload wrote has been read.
		_, err := io.Copy(out, t.master)
		if !errors.Is(err, unix.EIO) {
			t.outputErr = err
		}
		close(t.output)
	}()
	if in != nil {
		// Ends when the host closes stdin, or with an error once the
		// master is closed.
		go io.Copy(t.master, in)
	}
}

// resize sets the window size. Without -t there is no terminal and
// nothing to do; after the run a late size change is dropped.
func (t *terminal) resize(rows, cols uint16) error {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	conn, err := t.master.SyscallConn()
	var ioErr error
	if err == nil {
		err = conn.Control(func(m uintptr) {
			ioErr = unix.IoctlSetWinsize(int(m), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
		})
	}
	if err = errors.Join(err, ioErr); err != nil {
		return fmt.Errorf("set the terminal size to %dx%d: %w", rows, cols, err)
	}
	return nil
}

// drain waits, up to timeout, until everything the workload wrote to the
// terminal has been copied out, and closes the terminal. The workload and
// everything it started have exited (Supervise killed the rest), so once
// guestinit's own slave descriptor is closed the master reaches its end.
func (t *terminal) drain(timeout time.Duration) error {
	t.slave.Close()
	var err error
	select {
	case <-t.output:
		if t.outputErr != nil {
			err = fmt.Errorf("copy terminal output: %w", t.outputErr)
		}
	case <-time.After(timeout):
		err = fmt.Errorf("terminal output still open %v after the workload exited", timeout)
	}
	t.close()
	return err
}

func (t *terminal) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	t.slave.Close()
	t.master.Close()
}
