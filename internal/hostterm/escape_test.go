package hostterm

import (
	"bytes"
	"strings"
	"testing"
)

// filterAll feeds the reads in order and collects what goes to the guest,
// stopping at quit.
func filterAll(e *Escaper, reads ...string) (string, bool) {
	var got []byte
	for _, r := range reads {
		out, quit := e.Filter([]byte(r))
		got = append(got, out...)
		if quit {
			return string(got), true
		}
	}
	return string(got), false
}

func TestEscaper_Filter(t *testing.T) {
	tests := []struct {
		name     string
		reads    []string
		want     string
		wantQuit bool
	}{
		{"plain input passes", []string{"ls -l\r"}, "ls -l\r", false},
		{"quit", []string{"ab\x01xcd"}, "ab", true},
		{"quit split across reads", []string{"ab\x01", "xcd"}, "ab", true},
		{"literal Ctrl-A", []string{"a\x01\x01b"}, "a\x01b", false},
		{"literal Ctrl-A split", []string{"a\x01", "\x01", "b"}, "a\x01b", false},
		{"other key passes with Ctrl-A", []string{"\x01c"}, "\x01c", false},
		{"other key split passes with Ctrl-A", []string{"\x01", "c"}, "\x01c", false},
		{"literal Ctrl-A then x is not quit", []string{"\x01\x01x"}, "\x01x", false},
		{"uppercase X is not quit", []string{"\x01X"}, "\x01X", false},
		{"help sends nothing", []string{"\x01h", "z"}, "z", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, quit := filterAll(&Escaper{}, tt.reads...)
			if got != tt.want || quit != tt.wantQuit {
				t.Fatalf("got %q quit=%v, want %q quit=%v", got, quit, tt.want, tt.wantQuit)
			}
		})
	}
}

func TestEscaper_Help_WritesToHelpWriter(t *testing.T) {
	var help bytes.Buffer
	e := &Escaper{Help: &help}
	e.Filter([]byte{EscapeChar})
	e.Filter([]byte("h"))
	if !strings.Contains(help.String(), "C-a x") {
		t.Fatalf("help = %q, want the quit key listed", help.String())
	}
}

func TestEscaper_Flush_ReturnsHeldCtrlA(t *testing.T) {
	e := &Escaper{}
	e.Filter([]byte("a\x01"))
	if got := e.Flush(); !bytes.Equal(got, []byte{EscapeChar}) {
		t.Fatalf("Flush = %q, want the held Ctrl-A", got)
	}
	if got := e.Flush(); got != nil {
		t.Fatalf("second Flush = %q, want nil", got)
	}
}
