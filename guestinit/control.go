package guestinit

import (
	"errors"
	"io"
	"os"

	"github.com/vmm-dev/vmm/guestinit/protocol"
	"golang.org/x/sys/unix"
)

// serveControl reads the host's control messages from port until it ends:
// "signal N" goes to signals, for the workload; "winsize R C" to resize.
// A line that is not a message, or not one the host sends, is logged and
// skipped. A signal that finds signals full is dropped and logged:
// blocking would stall the window size too.
func serveControl(port io.Reader, logf func(format string, args ...any), signals chan<- os.Signal, resize func(rows, cols uint16) error) {
	cr := protocol.NewControlReader(port)
	for {
		c, err := cr.Next()
		if errors.Is(err, protocol.ErrBadControl) {
			logf("control port: %v", err)
			continue
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				logf("control port: %v", err)
			}
			return
		}
		switch c.Kind {
		case protocol.ControlSignal:
			select {
			case signals <- unix.Signal(c.Signal):
			default:
				logf("control port: %q dropped: %d signals are waiting", c, len(signals))
			}
		case protocol.ControlWinsize:
			if err := resize(c.Rows, c.Cols); err != nil {
				logf("control port: %v", err)
			}
		default:
			logf("control port: %q is not a message the host sends", c)
		}
	}
}
