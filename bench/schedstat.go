package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Scheduling counts for the guest suites. At each begin and end line the
// bench reads /proc/PID/task/*/schedstat of the VMM process: per thread,
// the time it ran, the time it was runnable but waited for a CPU, and how
// many times it was put on one. Over a phase the thread that ran most is
// the vCPU's (the micro-guests have one vCPU, running throughout); every
// other thread is the VMM's device and runtime work. Two figures come of
// it, per operation: how often those other threads were scheduled (each
// time, a thread woken from sleep, on this host often a cross-CPU
// interrupt), and how long the vCPU thread waited for a CPU (time the
// guest did not run). Two more say what the guest's own side cost: how
// long the vCPU thread ran (the guest's emulated instructions and its
// exits), and how often it was put on a CPU (each time, KVM loads the
// vCPU's state again). They say how a VMM's threads share the host's CPUs
// with its guest, which neither the guest's clock nor its counts show.

// threadSched is one line of /proc/PID/task/TID/schedstat.
type threadSched struct {
	run, wait time.Duration
	slices    int64
}

// parseSchedstat parses "run_ns wait_ns timeslices".
func parseSchedstat(s string) (threadSched, error) {
	var run, wait, slices int64
	if n, err := fmt.Sscan(s, &run, &wait, &slices); n != 3 {
		return threadSched{}, fmt.Errorf("schedstat %q: %v", s, err)
	}
	return threadSched{run: time.Duration(run), wait: time.Duration(wait), slices: slices}, nil
}

// readSchedstat reads the schedstat of every thread of process pid, by
// thread ID. A thread that ends while it reads is left out; a kernel
// without schedstat gives an empty map.
func readSchedstat(pid int) map[int]threadSched {
	out := map[int]threadSched{}
	dirs, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	for _, d := range dirs {
		tid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d, "schedstat"))
		if err != nil {
			continue
		}
		if ts, err := parseSchedstat(string(b)); err == nil {
			out[tid] = ts
		}
	}
	return out
}

// phaseSched is what a VMM's threads did between two readings.
type phaseSched struct {
	vcpuRun     time.Duration // the busiest thread's time on a CPU
	vcpuWait    time.Duration // the busiest thread's time waiting for a CPU
	vcpuSlices  int64         // times the busiest thread was put on a CPU
	otherSlices int64         // times the other threads were put on a CPU
}

// schedBetween compares two readings of one process. A thread started in
// between counts from zero; one that ended is left out, as its last
// figures are gone. ok is false when either reading is empty.
func schedBetween(begin, end map[int]threadSched) (ps phaseSched, ok bool) {
	if len(begin) == 0 || len(end) == 0 {
		return phaseSched{}, false
	}
	busiest, most := 0, time.Duration(-1)
	deltas := make(map[int]threadSched, len(end))
	for tid, e := range end {
		b := begin[tid]
		d := threadSched{run: e.run - b.run, wait: e.wait - b.wait, slices: e.slices - b.slices}
		deltas[tid] = d
		if d.run > most || d.run == most && tid < busiest {
			busiest, most = tid, d.run
		}
	}
	for tid, d := range deltas {
		if tid == busiest {
			ps.vcpuRun, ps.vcpuWait, ps.vcpuSlices = d.run, d.wait, d.slices
			continue
		}
		ps.otherSlices += d.slices
	}
	return ps, true
}
