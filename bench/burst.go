package main

import (
	"fmt"
	"os"
	"syscall"
	"time"
)

func init() { register(suite{name: "burst", run: runBurst}) }

const idleReady = "idle: ready"

// runBurst starts e.Burst idle 128 MiB micro-guests at once and times them
// until the last has printed "idle: ready"; while all idle it sums their
// PSS (shared pages, such as QEMU's libraries, split between the VMs).
func runBurst(e *Env) ([]Result, error) {
	kernel, err := e.Guest("idle")
	if err != nil {
		return nil, err
	}
	spec := vmSpec{kernel: kernel, memMiB: 128, cmdline: "console=ttyS0"}
	v, p, err := alternate(e, fmt.Sprintf("burst of %d", e.Burst),
		func() ([]float64, error) { return e.burstOnce(sideVMM, spec) },
		func() ([]float64, error) { return e.burstOnce(sidePeer, spec) })
	if err != nil {
		return nil, err
	}
	rs := []Result{
		{Metric: fmt.Sprintf("%d VMs × 128 MiB started at once, until all ready", e.Burst), Unit: "ms"},
		{Metric: "launch rate in that burst", Unit: "VMs/core/s", HigherIsBetter: true},
		{Metric: "host memory per idle VM (PSS)", Unit: "MiB"},
	}
	for i := range rs {
		rs[i].Suite, rs[i].PeerName = "burst", peerMicrovm
		rs[i].VMM, rs[i].Peer = v[i], p[i]
	}
	rs[1].setGoal(goal{Min: 5})
	return rs, nil
}

// burstOnce returns the time until all were ready (ms), VMs per core per
// second, and PSS per VM (MiB).
func (e *Env) burstOnce(s side, spec vmSpec) ([]float64, error) {
	procs := make([]*proc, 0, e.Burst)
	defer func() {
		for _, p := range procs {
			p.cmd.Process.Signal(syscall.SIGINT) // all at once; stop waits for each
		}
		for _, p := range procs {
			p.stop()
		}
	}()
	start := monoNow()
	for range e.Burst {
		p, err := startProc(e.command(s, spec), idleReady)
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
	}
	var last int64
	for _, p := range procs {
		at, err := p.waitMarker(idleReady, time.Minute)
		if err != nil {
			return nil, err
		}
		last = max(last, at)
	}
	var pss uint64
	for _, p := range procs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", p.pid()))
		if err != nil {
			return nil, err
		}
		kib, err := statusKiB(string(b), "Pss")
		if err != nil {
			return nil, err
		}
		pss += kib
	}
	n := float64(e.Burst)
	secs := float64(last-start) / 1e9
	return []float64{ms(last - start), n / secs / float64(e.Cores), float64(pss) / 1024 / n}, nil
}
