package guestinit

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestServeControl_DispatchesAndLogsBadLines(t *testing.T) {
	input := strings.Join([]string{
		"signal 15",
		"winsize 50 132",
		"bogus",
		"exit 3", // the guest's message, not the host's
		"signal 9",
		"signal 10", // finds the channel full
		strings.Repeat("x", 100),
		"winsize 1 2",
	}, "\n") + "\n"
	var logs []string
	logf := func(format string, args ...any) { logs = append(logs, fmt.Sprintf(format, args...)) }
	signals := make(chan os.Signal, 2)
	var sizes []string
	resize := func(rows, cols uint16) error {
		sizes = append(sizes, fmt.Sprintf("%dx%d", rows, cols))
		return nil
	}
	serveControl(strings.NewReader(input), logf, signals, resize)

	close(signals)
	var got []os.Signal
	for s := range signals {
		got = append(got, s)
	}
	if want := []os.Signal{unix.SIGTERM, unix.SIGKILL}; !slices.Equal(got, want) {
		t.Errorf("signals = %v, want %v", got, want)
	}
	if want := []string{"50x132", "1x2"}; !slices.Equal(sizes, want) {
		t.Errorf("sizes = %v, want %v", sizes, want)
	}
	wantLogs := []string{`"bogus"`, `"exit 3" is not a message the host sends`, `"signal 10" dropped`, "line of 101 bytes"}
	if len(logs) != len(wantLogs) {
		t.Fatalf("logs = %q, want one for each of %q", logs, wantLogs)
	}
	for i, want := range wantLogs {
		if !strings.HasPrefix(logs[i], "control port: ") || !strings.Contains(logs[i], want) {
			t.Errorf("log %d = %q, want control port: ...%s...", i, logs[i], want)
		}
	}
}

// A stream cut in the middle of a line ends the loop with a log line.
func TestServeControl_TruncatedLine_LoggedAndEnds(t *testing.T) {
	var logs []string
	logf := func(format string, args ...any) { logs = append(logs, fmt.Sprintf(format, args...)) }
	serveControl(strings.NewReader("signal 1"), logf, make(chan os.Signal, 1), nil)
	if len(logs) != 1 || !strings.Contains(logs[0], "unexpected EOF") {
		t.Errorf("logs = %q, want one about the unexpected end", logs)
	}
}
