package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"
)

// This file runs the benchmark micro-guests under vmm and QEMU, one
// process at a time, and times their phases (exits_marks.go). It is shared
// by the exits, blk and net suites.

// guestCmd is how one side starts one run of a benchmark micro-guest.
type guestCmd struct {
	Argv []string
	// NetNS runs the command inside this network namespace (ip netns
	// exec), where the run's TAP is.
	NetNS string
	// OnMark, if set, hears every begin and end line as it arrives, on
	// the goroutine that reads the console (the net suite starts its
	// sender on "rx begin"). An error ends the run.
	OnMark func(mark) error
}

// guestRun is what one run produced.
type guestRun struct {
	Phases  map[string]phase
	Console string
	// Sched is what the VMM's threads did in each phase (schedstat.go);
	// a phase is missing where the readings were not to be had.
	Sched map[string]phaseSched
}

// guestTimeout bounds one run: a guest that hangs (a device that never
// answers) costs this much, not the whole benchmark.
const guestTimeout = 120 * time.Second

// runGuest runs c until guest prints "<guest>: done" and its process
// ends, and returns the phases it timed.
func runGuest(guest string, c guestCmd) (guestRun, error) {
	argv := c.Argv
	if c.NetNS != "" {
		argv = append([]string{"ip", "netns", "exec", c.NetNS}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return guestRun{}, err
	}
	if err := cmd.Start(); err != nil {
		return guestRun{}, fmt.Errorf("start %s: %w", argv[0], err)
	}
	timer := time.AfterFunc(guestTimeout, func() { cmd.Process.Kill() })
	defer timer.Stop()

	clock := newPhaseClock()
	sched, began := map[string]phaseSched{}, map[string]map[int]threadSched{}
	onMark := c.OnMark
	c.OnMark = func(m mark) error {
		if onMark != nil {
			if err := onMark(m); err != nil {
				return err
			}
		}
		now := readSchedstat(cmd.Process.Pid)
		if !m.End {
			began[m.Phase] = now
		} else if ps, ok := schedBetween(began[m.Phase], now); ok {
			sched[m.Phase] = ps
		}
		return nil
	}
	console, done, readErr := readConsole(stdout, guest, clock, c)
	if readErr != nil {
		cmd.Process.Kill()
	}
	io.Copy(io.Discard, stdout) // let the process finish writing
	waitErr := cmd.Wait()
	run := guestRun{Phases: clock.done, Console: console, Sched: sched}
	describe := func(what string) error {
		return fmt.Errorf("%s under %s: %s; console:\n%s\nstderr:\n%s", guest, argv[0], what, tail(console, 2000), tail(stderr.String(), 2000))
	}
	switch {
	case readErr != nil:
		return run, describe(readErr.Error())
	case !done:
		return run, describe(fmt.Sprintf("no %q line (exit: %v)", guest+": done", waitErr))
	case waitErr != nil:
		return run, describe(fmt.Sprintf("exit: %v", waitErr))
	}
	return run, nil
}

// readConsole reads the guest's console line by line, timestamping each
// as it arrives, until "<guest>: done" (or the end of output). It returns
// the console text and whether the done line came.
func readConsole(r io.Reader, guest string, clock *phaseClock, c guestCmd) (string, bool, error) {
	var console strings.Builder
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		now := time.Now()
		console.WriteString(line)
		line = strings.TrimRight(line, "\r\n")
		m, isMark, perr := clock.line(line, now)
		if perr != nil {
			return console.String(), false, perr
		}
		if isMark && c.OnMark != nil {
			if err := c.OnMark(m); err != nil {
				return console.String(), false, err
			}
		}
		if line == guest+": done" {
			return console.String(), true, nil
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return console.String(), false, nil
			}
			return console.String(), false, err
		}
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// guestMetric is one figure a suite takes from a guest phase.
type guestMetric struct {
	Phase, Metric, Unit string
	Value               func(phase) float64
	// AtLeast is the factor of the peer's median the target asks of
	// vmm, as in "≥ 1.0 × QEMU"; 0 for no target.
	AtLeast float64
	// Per names one operation in the notes ("frame"); "" means request.
	Per string
}

func (gm guestMetric) per() string {
	if gm.Per == "" {
		return "request"
	}
	return gm.Per
}

// guestFigureKinds is how many figures guestFigures gives per metric.
const guestFigureKinds = 8

// guestFigures runs c once and returns each metric's value, then each
// metric's value by the guest's own PM timer (NaN without one), then the
// guest's polls and then its kicks per operation (NaN where it prints
// none), then per operation the times the VMM's threads other than the
// vCPU's were scheduled, the microseconds the vCPU thread waited for a
// CPU, the microseconds it ran and the times it was put on a CPU (NaN
// without schedstat), in the form alternate wants.
func guestFigures(guest string, c guestCmd, metrics []guestMetric) ([]float64, error) {
	r, err := runGuest(guest, c)
	if err != nil {
		return nil, err
	}
	n := len(metrics)
	vals := make([]float64, guestFigureKinds*n)
	for i, gm := range metrics {
		p, ok := r.Phases[gm.Phase]
		if !ok {
			return nil, fmt.Errorf("%s printed no phase %s; console:\n%s", guest, gm.Phase, tail(r.Console, 2000))
		}
		vals[i] = gm.Value(p)
		vals[n+i] = na
		if p.End.GuestTime > 0 {
			byGuest := p
			byGuest.HostTime = p.End.GuestTime
			vals[n+i] = gm.Value(byGuest)
		}
		for j, name := range []string{"polls", "kicks"} {
			vals[(2+j)*n+i] = na
			if count, ok := countLine(r.Console, guest, gm.Phase, name); ok {
				vals[(2+j)*n+i] = float64(count) / float64(p.End.N)
			}
		}
		for k := 4; k < guestFigureKinds; k++ {
			vals[k*n+i] = na
		}
		if ps, ok := r.Sched[gm.Phase]; ok && p.End.N > 0 {
			per := float64(p.End.N)
			vals[4*n+i] = float64(ps.otherSlices) / per
			vals[5*n+i] = float64(ps.vcpuWait) / float64(time.Microsecond) / per
			vals[6*n+i] = float64(ps.vcpuRun) / float64(time.Microsecond) / per
			vals[7*n+i] = float64(ps.vcpuSlices) / per
		}
	}
	return vals, nil
}

// guestSuite is a suite of figures from one micro-guest run alternately
// under vmm and its peer.
type guestSuite struct {
	Suite, Guest, Peer string
	VMM, PeerCmd       func() guestCmd
	Metrics            []guestMetric
}

// run measures the figures: one warm-up of each side, then e.Runs runs of
// each, alternately (alternate).
func (g guestSuite) run(e *Env) ([]Result, error) {
	if e.Baseline != "" {
		g = g.withBaseline(e.Baseline)
	}
	v, p, err := alternate(e, g.Suite,
		func() ([]float64, error) { return guestFigures(g.Guest, g.VMM(), g.Metrics) },
		func() ([]float64, error) { return guestFigures(g.Guest, g.PeerCmd(), g.Metrics) })
	if err != nil {
		return nil, err
	}
	n := len(g.Metrics)
	var out []Result
	for i, gm := range g.Metrics {
		r := Result{Suite: g.Suite, Metric: gm.Metric, Unit: gm.Unit, HigherIsBetter: true,
			VMM: v[i], Peer: p[i], PeerName: g.Peer,
			Note: guestClockNote(v[n+i], p[n+i], gm.Unit) + countNote("used-ring polls", v[2*n+i], p[2*n+i], gm.per()) +
				countNote("queue notifications", v[3*n+i], p[3*n+i], gm.per()) +
				countNote("times the VMM's other threads were scheduled", v[4*n+i], p[4*n+i], gm.per()) +
				countNote("µs the vCPU thread waited for a CPU", v[5*n+i], p[5*n+i], gm.per()) +
				countNote("µs the vCPU thread ran", v[6*n+i], p[6*n+i], gm.per()) +
				countNote("times the vCPU thread was put on a CPU", v[7*n+i], p[7*n+i], gm.per())}
		if gm.AtLeast > 0 && e.Baseline == "" {
			setAtLeast(&r, gm.AtLeast, "QEMU")
		}
		out = append(out, r)
	}
	return out, nil
}

// withBaseline makes the peer the vmm binary bin, running the guest as the
// measured vmm does.
func (g guestSuite) withBaseline(bin string) guestSuite {
	vmm := g.VMM
	g.Peer = "vmm baseline"
	g.PeerCmd = func() guestCmd {
		c := vmm()
		c.Argv = append([]string{bin}, c.Argv[1:]...)
		return c
	}
	return g
}

// guestClockNote says how the figures were taken and gives the medians
// the guests' own PM timers give, where they have one.
func guestClockNote(vmm, peer Sample, unit string) string {
	note := "host-timed from the guest's begin/end console lines"
	g := func(s Sample) string {
		if len(s.Values) == 0 {
			return "none"
		}
		return formatValue(s.Median()) + " " + unit
	}
	if len(vmm.Values)+len(peer.Values) > 0 {
		note += fmt.Sprintf("; by the guest's PM timer: vmm %s, peer %s", g(vmm), g(peer))
	}
	return note
}

// countNote gives the medians of a count the guests keep per operation,
// where they keep it: their looks at the used ring (beyond one an
// operation, the guest waiting for the device, in its own instructions)
// or their notifications (each an exit).
func countNote(what string, vmm, peer Sample, per string) string {
	if len(vmm.Values) == 0 || len(peer.Values) == 0 {
		return ""
	}
	return fmt.Sprintf("; %s per %s: vmm %.2f, peer %.2f", what, per, vmm.Median(), peer.Median())
}

// setAtLeast sets r's target to at least factor times the peer's median
// (the peer called who), and whether vmm meets it; the plot marks the
// factor. (goal's own text would name the peer "peer".)
func setAtLeast(r *Result, factor float64, who string) {
	r.Target = fmt.Sprintf("≥ %.1f × %s", factor, who)
	r.goal = goal{MinRatio: factor}
	if len(r.VMM.Values) == 0 || r.Peer.Median() == 0 {
		return
	}
	met := r.VMM.Median() >= factor*r.Peer.Median()
	r.Met = &met
}
