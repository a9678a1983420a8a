package main

import (
	"os"
	"testing"
	"time"
)

func TestParseSchedstat(t *testing.T) {
	got, err := parseSchedstat("1500 250 7\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := (threadSched{run: 1500, wait: 250, slices: 7}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	for _, bad := range []string{"", "1 2", "a b c"} {
		if _, err := parseSchedstat(bad); err == nil {
			t.Errorf("parseSchedstat(%q) took it", bad)
		}
	}
}

func TestSchedBetween(t *testing.T) {
	ms := time.Millisecond
	begin := map[int]threadSched{
		10: {run: 5 * ms, wait: 1 * ms, slices: 4},  // a device thread
		11: {run: 90 * ms, wait: 2 * ms, slices: 9}, // the vCPU
		12: {run: 1 * ms, wait: 0, slices: 3},       // ends before the end line
	}
	end := map[int]threadSched{
		10: {run: 9 * ms, wait: 3 * ms, slices: 24},
		11: {run: 290 * ms, wait: 7 * ms, slices: 15},
		13: {run: 2 * ms, wait: 1 * ms, slices: 5}, // started in the phase
	}
	got, ok := schedBetween(begin, end)
	if !ok {
		t.Fatal("no figures from two readings")
	}
	// The vCPU ran most (200 ms): it waited 5 ms more and was scheduled 6
	// times more; the others were scheduled 20 and 5 times; thread 12 is
	// gone.
	if want := (phaseSched{vcpuRun: 200 * ms, vcpuWait: 5 * ms, vcpuSlices: 6, otherSlices: 25}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if _, ok := schedBetween(nil, end); ok {
		t.Error("figures without a begin reading")
	}
	if _, ok := schedBetween(begin, map[int]threadSched{}); ok {
		t.Error("figures without an end reading")
	}
}

func TestReadSchedstat_ThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/schedstat"); err != nil {
		t.Skipf("no schedstat on this kernel: %v", err)
	}
	threads := readSchedstat(os.Getpid())
	if len(threads) == 0 {
		t.Fatal("no threads read")
	}
	var run time.Duration
	for _, ts := range threads {
		run += ts.run
	}
	if run <= 0 {
		t.Errorf("threads ran %v in all", run)
	}
}
