package hostterm

import "io"

// EscapeChar is the byte that starts an escape sequence: Ctrl-A.
const EscapeChar = 0x01

// Keys that may follow EscapeChar.
const (
	escapeQuit = 'x'
	escapeHelp = 'h'
)

// helpText ends lines with "\r\n" because the terminal is in raw mode.
const helpText = "\r\n" +
	"C-a x    quit the VM\r\n" +
	"C-a C-a  send C-a to the guest\r\n" +
	"C-a h    print this help\r\n"

// Escaper filters terminal input on its way to the guest, acting on the
// escape sequences in the package comment. It keeps state across calls, so
// a sequence split over two reads works. The zero value discards the help.
type Escaper struct {
	Help io.Writer // where Ctrl-A h prints; the user's stderr

	pending bool // the last byte seen was an unconsumed EscapeChar
	buf     []byte
}

// Filter returns the bytes of in that go to the guest, and quit when the
// user typed the quit sequence; then the bytes after it are dropped and the
// caller should stop the VM. out is valid until the next call.
func (e *Escaper) Filter(in []byte) (out []byte, quit bool) {
	out = e.buf[:0]
	for i, b := range in {
		if !e.pending {
			if b == EscapeChar {
				e.pending = true
			} else {
				out = append(out, b)
			}
			continue
		}
		e.pending = false
		switch b {
		case escapeQuit:
			e.buf = out
			return out, true
		case EscapeChar:
			out = append(out, EscapeChar)
		case escapeHelp:
			if e.Help != nil {
				io.WriteString(e.Help, helpText) // best effort: it is only help
			}
		default:
			out = append(out, EscapeChar, in[i])
		}
	}
	e.buf = out
	return out, false
}

// Flush returns an EscapeChar held back at the end of the last Filter call,
// for when input ends (EOF) before the next byte could say what it meant.
func (e *Escaper) Flush() []byte {
	if !e.pending {
		return nil
	}
	e.pending = false
	return []byte{EscapeChar}
}
