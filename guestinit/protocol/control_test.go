package protocol

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestControl_RoundTrip(t *testing.T) {
	for _, c := range []Control{ExitMessage(0), ExitMessage(42), ExitMessage(255), SignalMessage(15), SignalMessage(64), WinsizeMessage(24, 80), WinsizeMessage(0, 0)} {
		b, err := c.Marshal()
		if err != nil {
			t.Fatalf("%v: %v", c, err)
		}
		got, err := ParseControl(string(b))
		if err != nil || got != c {
			t.Errorf("ParseControl(%q) = %v, %v; want %v", b, got, err, c)
		}
	}
}

func TestControl_Refused(t *testing.T) {
	for _, c := range []Control{ExitMessage(-1), ExitMessage(256), SignalMessage(0), SignalMessage(65), {Kind: "halt"}} {
		if _, err := c.Marshal(); !errors.Is(err, ErrBadControl) {
			t.Errorf("Marshal(%#v) = %v, want ErrBadControl", c, err)
		}
	}
	for _, line := range []string{"", "exit", "exit 256", "exit -1", "exit 01", "exit +1", "exit 1 2", "signal 0", "signal 65",
		"winsize 24", "winsize 24 80 1", "winsize 65536 1", "EXIT 1", "exit  1", "reboot", strings.Repeat("9", 70)} {
		if c, err := ParseControl(line); !errors.Is(err, ErrBadControl) {
			t.Errorf("ParseControl(%q) = %v, %v; want ErrBadControl", line, c, err)
		}
	}
}

func TestControlReader(t *testing.T) {
	in := "winsize 30 100\n" + strings.Repeat("x", 500) + "\nsignal 2\nbogus\nexit 7\nexit"
	cr := NewControlReader(strings.NewReader(in))
	want := []struct {
		c   Control
		bad bool
	}{{WinsizeMessage(30, 100), false}, {Control{}, true}, {SignalMessage(2), false}, {Control{}, true}, {ExitMessage(7), false}}
	for i, w := range want {
		c, err := cr.Next()
		if w.bad {
			if !errors.Is(err, ErrBadControl) {
				t.Fatalf("message %d: %v, %v; want ErrBadControl", i, c, err)
			}
			continue
		}
		if err != nil || c != w.c {
			t.Fatalf("message %d: %v, %v; want %v", i, c, err, w.c)
		}
	}
	if _, err := cr.Next(); err != io.ErrUnexpectedEOF {
		t.Fatalf("cut line: %v, want io.ErrUnexpectedEOF", err)
	}
	if _, err := cr.Next(); err != io.EOF {
		t.Fatalf("end: %v, want io.EOF", err)
	}
}

// FuzzParseControl: any line either parses into a message that marshals
// back to the same line, or is refused with ErrBadControl; never a panic.
func FuzzParseControl(f *testing.F) {
	for _, s := range []string{"exit 0\n", "signal 15", "winsize 24 80", "exit 256", "", "winsize 1 2 3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		c, err := ParseControl(line)
		if err != nil {
			if !errors.Is(err, ErrBadControl) {
				t.Fatalf("ParseControl(%q): %v is not ErrBadControl", line, err)
			}
			return
		}
		b, err := c.Marshal()
		if err != nil {
			t.Fatalf("parsed %q into %#v, which does not marshal: %v", line, c, err)
		}
		if string(b) != strings.TrimSuffix(line, "\n")+"\n" {
			t.Fatalf("parsed %q, marshals back as %q", line, b)
		}
	})
}
