package protocol

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// The virtio-console ports of a run, by name. The guest finds them under
// /sys/class/virtio-ports/*/name; QEMU names its virtserialports the same
// way, so the reference tier drives the same guest code.
//
// Stdout and stderr carry the workload's own bytes, unchanged, each on its
// own port; the kernel's messages stay on the serial console. Stdin is
// there with -i (or -t): the host closing it is the workload's end of
// file. With -t the workload has a terminal inside the guest and stdout
// carries everything it writes there; stderr stays silent, as docker's is.
// Control carries the line messages below both ways.
const (
	PortStdin   = "vmm.stdin"
	PortStdout  = "vmm.stdout"
	PortStderr  = "vmm.stderr"
	PortControl = "vmm.control"
	// PortAgent carries guest commands and file copies (package
	// guestinit/agent) when the host adds it.
	PortAgent = "vmm.agent"
)

// RootfsDevice is the image's read-only disk in the guest: `vmm run`
// attaches it before any --disk, so it is the first virtio disk.
const RootfsDevice = "/dev/vda"

// Control messages are single text lines on PortControl:
//
//	exit N          guest → host: the workload ended with status N (0-255,
//	                128+n for death by signal n); the guest powers off next
//	signal N        host → guest: deliver signal N (1-64) to the workload
//	winsize R C     host → guest: the terminal is R rows by C columns
//
// A line is at most MaxControlLine bytes with its newline. Unknown kinds
// are errors, so a mismatched host and guest fail loudly.
const (
	ControlExit    = "exit"
	ControlSignal  = "signal"
	ControlWinsize = "winsize"
)

// MaxControlLine bounds one control line, newline included.
const MaxControlLine = 64

// ErrBadControl marks a control line that cannot be used.
var ErrBadControl = errors.New("bad control message")

// Control is one control message. Only the fields of its Kind are set.
type Control struct {
	Kind       string
	Status     int    // exit
	Signal     int    // signal
	Rows, Cols uint16 // winsize
}

// ExitMessage, SignalMessage and WinsizeMessage build the messages.
func ExitMessage(status int) Control { return Control{Kind: ControlExit, Status: status} }
func SignalMessage(sig int) Control  { return Control{Kind: ControlSignal, Signal: sig} }
func WinsizeMessage(rows, cols uint16) Control {
	return Control{Kind: ControlWinsize, Rows: rows, Cols: cols}
}

// String is the message's line without the newline.
func (c Control) String() string {
	switch c.Kind {
	case ControlExit:
		return fmt.Sprintf("%s %d", c.Kind, c.Status)
	case ControlSignal:
		return fmt.Sprintf("%s %d", c.Kind, c.Signal)
	case ControlWinsize:
		return fmt.Sprintf("%s %d %d", c.Kind, c.Rows, c.Cols)
	}
	return c.Kind
}

// Marshal validates c and returns its line, newline included.
func (c Control) Marshal() ([]byte, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	return []byte(c.String() + "\n"), nil
}

// WriteControl writes c as one line, in a single Write so messages from
// several goroutines never interleave.
func WriteControl(w io.Writer, c Control) error {
	b, err := c.Marshal()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func (c Control) validate() error {
	switch c.Kind {
	case ControlExit:
		if c.Status < 0 || c.Status > 255 {
			return fmt.Errorf("%w: exit status %d, want 0-255", ErrBadControl, c.Status)
		}
	case ControlSignal:
		if c.Signal < 1 || c.Signal > 64 {
			return fmt.Errorf("%w: signal %d, want 1-64", ErrBadControl, c.Signal)
		}
	case ControlWinsize:
	default:
		return fmt.Errorf("%w: unknown kind %q", ErrBadControl, c.Kind)
	}
	return nil
}

// ParseControl reads one line (with or without its newline).
func ParseControl(line string) (Control, error) {
	line = strings.TrimSuffix(line, "\n")
	if len(line) >= MaxControlLine {
		return Control{}, fmt.Errorf("%w: line of %d bytes, at most %d", ErrBadControl, len(line), MaxControlLine-1)
	}
	f := strings.Split(line, " ")
	num := func(i int, max uint64) (uint64, error) {
		n, err := strconv.ParseUint(f[i], 10, 64)
		if err != nil || n > max || f[i] != strconv.FormatUint(n, 10) {
			return 0, fmt.Errorf("%w: %q: field %d is not a number up to %d", ErrBadControl, line, i, max)
		}
		return n, nil
	}
	var c Control
	switch {
	case f[0] == ControlExit && len(f) == 2:
		n, err := num(1, 255)
		if err != nil {
			return Control{}, err
		}
		c = ExitMessage(int(n))
	case f[0] == ControlSignal && len(f) == 2:
		n, err := num(1, 64)
		if err != nil {
			return Control{}, err
		}
		c = SignalMessage(int(n))
	case f[0] == ControlWinsize && len(f) == 3:
		r, err := num(1, 65535)
		if err != nil {
			return Control{}, err
		}
		col, err := num(2, 65535)
		if err != nil {
			return Control{}, err
		}
		c = WinsizeMessage(uint16(r), uint16(col))
	default:
		return Control{}, fmt.Errorf("%w: %q", ErrBadControl, line)
	}
	if err := c.validate(); err != nil {
		return Control{}, err
	}
	return c, nil
}

// ControlReader reads control lines from a port, refusing overlong ones
// without buffering them whole.
type ControlReader struct {
	r *bufio.Reader
}

// NewControlReader reads messages from r.
func NewControlReader(r io.Reader) *ControlReader {
	return &ControlReader{r: bufio.NewReaderSize(r, 4*MaxControlLine)}
}

// Next returns the next message. At the end of r it returns io.EOF; a line
// cut short by the end is io.ErrUnexpectedEOF. A bad line is an
// ErrBadControl error, and reading may go on after it.
func (cr *ControlReader) Next() (Control, error) {
	line, err := cr.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) || (err == nil && len(line) > MaxControlLine) {
		n := len(line)
		for errors.Is(err, bufio.ErrBufferFull) {
			line, err = cr.r.ReadSlice('\n')
			n += len(line)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return Control{}, err
		}
		return Control{}, fmt.Errorf("%w: line of %d bytes, at most %d", ErrBadControl, n, MaxControlLine)
	}
	if err != nil {
		if errors.Is(err, io.EOF) && len(line) > 0 {
			return Control{}, io.ErrUnexpectedEOF
		}
		return Control{}, err
	}
	return ParseControl(string(line))
}
