package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The benchmark micro-guests (benchexit, benchblk, benchnet; their common
// part is internal/microguest/src/bench.h) bracket each phase of work with
// two console lines:
//
//	<guest>: <phase> begin
//	<guest>: <phase> end n=<ops> bytes=<bytes> [us=<µs> [(<rate>/s)]]
//	<guest>: <phase> polls=<count>      (benchblk, benchnet: looks at the used ring)
//	<guest>: <phase> kicks=<count>      (benchnet: queue notifications)
//
// us is the guest's own PM-timer measurement, absent on a machine without
// a PM timer (QEMU microvm). The suites time a phase on the host, from when
// its two lines arrive, so that vmm and every QEMU machine are timed alike;
// the guest's figure is a cross-check. This file is shared by the exits,
// blk and net suites.

// mark is one parsed begin or end line.
type mark struct {
	Guest, Phase string
	End          bool
	N, Bytes     uint64 // end lines only
	// GuestTime is the guest's PM-timer measurement of the phase; zero
	// when it has none.
	GuestTime time.Duration
}

// parseMark parses a begin or end line (without its newline); ok is false
// for any other line.
func parseMark(line string) (m mark, ok bool, err error) {
	guest, rest, found := strings.Cut(line, ": ")
	if !found || !strings.HasPrefix(guest, "bench") || strings.ContainsAny(guest, " \t") {
		return mark{}, false, nil
	}
	fields := strings.Fields(rest)
	if len(fields) < 2 {
		return mark{}, false, nil
	}
	m.Guest, m.Phase = guest, fields[0]
	switch fields[1] {
	case "begin":
		if len(fields) != 2 {
			return mark{}, false, nil
		}
		return m, true, nil
	case "end":
		m.End = true
	default:
		return mark{}, false, nil
	}
	var haveN, haveBytes bool
	for _, f := range fields[2:] {
		key, val, isKV := strings.Cut(f, "=")
		if !isKV {
			continue // "(12345/s)", the guest's rate for a person
		}
		v, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			return mark{}, false, fmt.Errorf("guest line %q: %s: %w", line, key, err)
		}
		switch key {
		case "n":
			m.N, haveN = v, true
		case "bytes":
			m.Bytes, haveBytes = v, true
		case "us":
			m.GuestTime = time.Duration(v) * time.Microsecond
		}
	}
	if !haveN || !haveBytes {
		return mark{}, false, fmt.Errorf("guest line %q: an end line needs n= and bytes=", line)
	}
	return m, true, nil
}

// countLine finds "<guest>: <phase> <name>=<count>" in console: a count the
// guest kept over the phase, such as polls (its looks at the used ring)
// or kicks (its queue notifications).
func countLine(console, guest, phase, name string) (uint64, bool) {
	prefix := guest + ": " + phase + " " + name + "="
	for line := range strings.Lines(console) {
		if rest, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), prefix); ok {
			v, err := strconv.ParseUint(rest, 10, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// phase is one phase of one run: its end line and the host's time between
// the begin and end lines.
type phase struct {
	End      mark
	HostTime time.Duration
}

// Rate is operations per second by the host's clock.
func (p phase) Rate() float64 { return float64(p.End.N) / p.HostTime.Seconds() }

// MBps is megabytes (10^6) per second by the host's clock.
func (p phase) MBps() float64 { return float64(p.End.Bytes) / 1e6 / p.HostTime.Seconds() }

// phaseClock pairs begin and end lines as they arrive.
type phaseClock struct {
	begun map[string]time.Time
	done  map[string]phase
}

func newPhaseClock() *phaseClock {
	return &phaseClock{begun: map[string]time.Time{}, done: map[string]phase{}}
}

// line takes one console line that arrived at t; it returns the mark when
// the line is one.
func (c *phaseClock) line(s string, t time.Time) (mark, bool, error) {
	m, ok, err := parseMark(s)
	if err != nil || !ok {
		return m, ok, err
	}
	if !m.End {
		if _, dup := c.begun[m.Phase]; dup {
			return m, true, fmt.Errorf("phase %s began twice", m.Phase)
		}
		c.begun[m.Phase] = t
		return m, true, nil
	}
	start, begun := c.begun[m.Phase]
	if !begun {
		return m, true, fmt.Errorf("phase %s ended without a begin line", m.Phase)
	}
	if _, dup := c.done[m.Phase]; dup {
		return m, true, fmt.Errorf("phase %s ended twice", m.Phase)
	}
	d := t.Sub(start)
	if d <= 0 || m.N == 0 {
		return m, true, fmt.Errorf("phase %s: %d operations in %v", m.Phase, m.N, d)
	}
	c.done[m.Phase] = phase{End: m, HostTime: d}
	return m, true, nil
}
