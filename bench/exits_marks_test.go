package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseMark(t *testing.T) {
	for _, tc := range []struct {
		line string
		want mark
		ok   bool
	}{
		{"benchexit: pio begin", mark{Guest: "benchexit", Phase: "pio"}, true},
		{"benchexit: pio end n=20000 bytes=0 us=412345 (48502/s)",
			mark{Guest: "benchexit", Phase: "pio", End: true, N: 20000, GuestTime: 412345 * time.Microsecond}, true},
		{"benchblk: read-64k end n=2000 bytes=131072000 us=1 (2000000000/s)",
			mark{Guest: "benchblk", Phase: "read-64k", End: true, N: 2000, Bytes: 131072000, GuestTime: time.Microsecond}, true},
		// No PM timer (QEMU microvm): no us=, no rate.
		{"benchexit: mmio end n=20000 bytes=0", mark{Guest: "benchexit", Phase: "mmio", End: true, N: 20000}, true},
		{"benchnet: rx end n=5 bytes=7570 us=0", mark{Guest: "benchnet", Phase: "rx", End: true, N: 5, Bytes: 7570}, true},
		// Lines that are not marks.
		{"benchexit: n=20000 pm=1", mark{}, false},
		{"benchexit: done", mark{}, false},
		{"benchblk: features ok", mark{}, false},
		{"benchblk: write-4k request 3 status 1", mark{}, false},
		{"benchnet: rx timeout after 17 frames", mark{}, false},
		{"virtio-blk: read begin", mark{}, false},
		{"benchexit: pio begin now", mark{}, false},
		{"", mark{}, false},
	} {
		got, ok, err := parseMark(tc.line)
		if err != nil || ok != tc.ok || got != tc.want {
			t.Errorf("parseMark(%q) = %+v, %v, %v; want %+v, %v, nil", tc.line, got, ok, err, tc.want, tc.ok)
		}
	}
}

func TestParseMark_BadEndLine(t *testing.T) {
	for _, line := range []string{
		"benchexit: pio end",                   // no counts
		"benchexit: pio end n=5",               // no bytes
		"benchexit: pio end n=x bytes=0",       // not a number
		"benchexit: pio end n=5 bytes=0 us=-1", // negative
	} {
		if _, _, err := parseMark(line); err == nil {
			t.Errorf("parseMark(%q): no error", line)
		}
	}
}

// TestPhaseClock_TimesPhasesByArrival: a phase's host time runs from its
// begin line's arrival to its end line's, and its figures follow.
func TestPhaseClock_TimesPhasesByArrival(t *testing.T) {
	t0 := time.Unix(1000, 0)
	c := newPhaseClock()
	for _, l := range []struct {
		s  string
		at time.Duration
	}{
		{"benchblk: features ok", 0},
		{"benchblk: read-4k begin", 10 * time.Millisecond},
		{"benchblk: read-4k end n=2000 bytes=8192000 us=490000 (4081/s)", 510 * time.Millisecond},
		{"benchblk: read-64k begin", 600 * time.Millisecond},
		{"benchblk: read-64k end n=2000 bytes=131072000", 1600 * time.Millisecond},
	} {
		if _, _, err := c.line(l.s, t0.Add(l.at)); err != nil {
			t.Fatalf("line %q: %v", l.s, err)
		}
	}
	p4, p64 := c.done["read-4k"], c.done["read-64k"]
	if p4.HostTime != 500*time.Millisecond || p4.Rate() != 4000 || p4.MBps() != 16.384 {
		t.Errorf("read-4k: %v, %v/s, %v MB/s; want 500ms, 4000/s, 16.384 MB/s", p4.HostTime, p4.Rate(), p4.MBps())
	}
	if p4.End.GuestTime != 490*time.Millisecond {
		t.Errorf("read-4k guest time %v, want 490ms", p4.End.GuestTime)
	}
	if p64.HostTime != time.Second || p64.MBps() != 131.072 {
		t.Errorf("read-64k: %v, %v MB/s; want 1s, 131.072 MB/s", p64.HostTime, p64.MBps())
	}
}

func TestPhaseClock_RejectsBrokenSequences(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		name  string
		lines []string
		want  string
	}{
		{"end without begin", []string{"benchexit: pio end n=1 bytes=0"}, "without a begin"},
		{"two begins", []string{"benchexit: pio begin", "benchexit: pio begin"}, "began twice"},
		{"two ends", []string{"benchexit: pio begin", "benchexit: pio end n=1 bytes=0", "benchexit: pio end n=1 bytes=0"}, "ended twice"},
		{"no operations", []string{"benchexit: pio begin", "benchexit: pio end n=0 bytes=0"}, "0 operations"},
	} {
		c := newPhaseClock()
		var err error
		for i, l := range tc.lines {
			if _, _, err = c.line(l, t0.Add(time.Duration(i+1)*time.Millisecond)); err != nil {
				break
			}
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
}

// TestReadConsole_StopsAtDoneAndCallsOnMark: the reader hands every mark
// to OnMark as it comes and stops at the done line.
func TestReadConsole_StopsAtDoneAndCallsOnMark(t *testing.T) {
	out := "benchnet: n=2 pm=1 mac 02:00:00:00:00:02\n" +
		"benchnet: rx begin\n" +
		"benchnet: rx end n=2 bytes=3028 us=100\n" +
		"benchnet: done\n" +
		"vmm: guest reset\n"
	var seen []string
	c := guestCmd{OnMark: func(m mark) error {
		seen = append(seen, m.Phase+map[bool]string{false: " begin", true: " end"}[m.End])
		return nil
	}}
	clock := newPhaseClock()
	console, done, err := readConsole(strings.NewReader(out), "benchnet", clock, c)
	if err != nil || !done {
		t.Fatalf("done %v, err %v", done, err)
	}
	if strings.Contains(console, "vmm:") || !strings.HasSuffix(console, "benchnet: done\n") {
		t.Errorf("console %q: want everything up to the done line", console)
	}
	if strings.Join(seen, ",") != "rx begin,rx end" {
		t.Errorf("OnMark saw %q", seen)
	}
	if _, ok := clock.done["rx"]; !ok {
		t.Error("phase rx not timed")
	}
}

func TestReadConsole_NoDoneLine(t *testing.T) {
	_, done, err := readConsole(strings.NewReader("benchblk: no block device\n"), "benchblk", newPhaseClock(), guestCmd{})
	if done || err != nil {
		t.Errorf("done %v, err %v; want false, nil", done, err)
	}
}

func TestCountLine(t *testing.T) {
	console := "benchblk: read-4k end n=2000 bytes=8192000\r\n" +
		"benchblk: read-4k polls=19000\r\n" +
		"benchblk: read-4k kicks=2000\r\n" +
		"benchblk: read-64k polls=x\n"
	if n, ok := countLine(console, "benchblk", "read-4k", "polls"); !ok || n != 19000 {
		t.Errorf("read-4k polls: %d, %v; want 19000, true", n, ok)
	}
	if n, ok := countLine(console, "benchblk", "read-4k", "kicks"); !ok || n != 2000 {
		t.Errorf("read-4k kicks: %d, %v; want 2000, true", n, ok)
	}
	for _, ph := range []string{"read-64k", "write-4k"} {
		if _, ok := countLine(console, "benchblk", ph, "polls"); ok {
			t.Errorf("%s: found a count", ph)
		}
	}
}
