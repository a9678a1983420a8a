package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

func init() { register(suite{name: "memory", run: runMemory}) }

// touchBase is where the idle guest starts touching (idle.c TOUCH_BASE).
const touchBaseMiB = 16

// runMemory measures VMM overhead: the VMM process's peak RSS less the
// guest memory its guest touched. The idle micro-guest writes every page
// from 16 MiB to the top of its RAM, says so and halts; the VMM's VmHWM is
// read then, before it is stopped. Guest pages below 16 MiB (the image, the
// boot data; QEMU's firmware) count as overhead: well under 1 MiB for vmm.
func runMemory(e *Env) ([]Result, error) {
	kernel, err := e.Guest("idle")
	if err != nil {
		return nil, err
	}
	sizes := []struct {
		mib  int
		name string
		goal goal
	}{
		{128, "128 MiB", goal{Max: 5, MaxRatio: 0.3}},
		{1024, "1 GiB", goal{MaxRatio: 0.3}},
	}
	var rs []Result
	for _, sz := range sizes {
		touch := sz.mib - touchBaseMiB
		spec := vmSpec{kernel: kernel, memMiB: sz.mib, cmdline: fmt.Sprintf("console=ttyS0 touch=%d", touch)}
		v, p, err := alternate(e, "memory "+sz.name,
			func() ([]float64, error) { return e.memoryOnce(sideVMM, spec, touch) },
			func() ([]float64, error) { return e.memoryOnce(sidePeer, spec, touch) })
		if err != nil {
			return nil, err
		}
		over := Result{Suite: "memory", Metric: "VMM overhead (peak RSS − touched RAM), " + sz.name + " guest",
			Unit: "MiB", PeerName: peerMicrovm, VMM: v[0], Peer: p[0]}
		over.setGoal(sz.goal)
		rs = append(rs, over)
		if sz.mib == 128 {
			rs = append(rs,
				Result{Suite: "memory", Metric: "vmm's Go runtime (mapped − released), " + sz.name + " guest",
					Unit: "MiB", VMM: v[1], Note: "from the runtime's MemStats at exit (VMM_TRACE_MEMORY=1); part of the overhead above"},
				Result{Suite: "memory", Metric: "vmm's Go heap objects, " + sz.name + " guest", Unit: "MiB", VMM: v[2]})
		}
	}
	return rs, nil
}

// memoryOnce returns the overhead in MiB and, for vmm, the Go runtime's
// mapped-less-released and heap-object MiB.
func (e *Env) memoryOnce(s side, spec vmSpec, touchMiB int) ([]float64, error) {
	p, err := startProc(e.command(s, spec), "idle: touched")
	if err != nil {
		return nil, err
	}
	if _, err := p.waitMarker("idle: touched", 2*time.Minute); err != nil {
		p.kill()
		return nil, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid()))
	p.stop()
	if err != nil {
		return nil, err
	}
	hwm, err := statusKiB(string(status), "VmHWM")
	if err != nil {
		return nil, err
	}
	over := float64(hwm)/1024 - float64(touchMiB)
	if s != sideVMM {
		return []float64{over, na, na}, nil
	}
	gm, err := parseMemoryTrace(p.stderrText())
	if err != nil {
		return nil, err
	}
	return []float64{over, mib(gm["go_total"] - gm["go_released"]), mib(gm["go_heap_objects"])}, nil
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// statusKiB reads a "Key:   N kB" line of /proc/PID/status or smaps_rollup.
func statusKiB(text, key string) (uint64, error) {
	for line := range strings.Lines(text) {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k != key {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("%s: unexpected %q", key, strings.TrimSpace(line))
		}
		return strconv.ParseUint(f[0], 10, 64)
	}
	return 0, fmt.Errorf("no %s line", key)
}

const memoryTracePrefix = "vmm: memory trace: "

// parseMemoryTrace reads the key=value line VMM_TRACE_MEMORY=1 makes vmm
// print at the end of a run (cmd/vmm/boot.go traceMemory).
func parseMemoryTrace(stderr string) (map[string]uint64, error) {
	for line := range strings.Lines(stderr) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), memoryTracePrefix)
		if !ok {
			continue
		}
		m := map[string]uint64{}
		for _, kv := range strings.Fields(rest) {
			k, v, _ := strings.Cut(kv, "=")
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("memory trace %q: %w", kv, err)
			}
			m[k] = n
		}
		for _, k := range []string{"go_total", "go_released", "go_heap_objects"} {
			if _, ok := m[k]; !ok {
				return nil, fmt.Errorf("memory trace has no %s: %q", k, rest)
			}
		}
		return m, nil
	}
	return nil, fmt.Errorf("vmm printed no memory trace (VMM_TRACE_MEMORY=1)")
}
