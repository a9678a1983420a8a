package main

import (
	"strings"
	"testing"
)

func TestParseStartupTrace(t *testing.T) {
	stderr := "\nvmm: guest reset: i8042 reset command; unhandled accesses: pio=0 mmio=0\n" +
		"vmm: startup phase first-kvm-run at CLOCK_MONOTONIC 22603761784449 ns\n" +
		"vmm: memory trace: go_total=7821576 go_released=2260992 go_heap_objects=265968\n"
	got, err := parseStartupTrace(stderr)
	if err != nil || got != 22603761784449 {
		t.Fatalf("got %d, %v; want 22603761784449", got, err)
	}
	if _, err := parseStartupTrace("vmm: guest reset\n"); err == nil {
		t.Error("no trace line: want an error")
	}
	if _, err := parseStartupTrace("vmm: startup phase first-kvm-run at CLOCK_MONOTONIC soon ns\n"); err == nil {
		t.Error("bad number: want an error")
	}
}

func TestParseStartupPhase(t *testing.T) {
	stderr := "vmm: startup phase main at CLOCK_MONOTONIC 1500 ns\nvmm: startup phase flags at CLOCK_MONOTONIC 1600 ns\n"
	if at, ok := parseStartupPhase(stderr, "flags"); !ok || at != 1600 {
		t.Errorf("flags: %d, %v", at, ok)
	}
	if _, ok := parseStartupPhase(stderr, "vcpus"); ok {
		t.Error("found a phase that is not there")
	}
}

func TestParseMemoryTrace(t *testing.T) {
	m, err := parseMemoryTrace("x\nvmm: memory trace: go_total=7821576 go_released=2260992 go_heap_objects=265968\n")
	if err != nil || m["go_total"] != 7821576 || m["go_released"] != 2260992 || m["go_heap_objects"] != 265968 {
		t.Fatalf("got %v, %v", m, err)
	}
	for _, bad := range []string{"", memoryTracePrefix + "go_total=1 go_released=2", memoryTracePrefix + "go_total=x go_released=2 go_heap_objects=3"} {
		if _, err := parseMemoryTrace(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

const procStatus = `Name:	vmm
Umask:	0022
State:	S (sleeping)
VmPeak:	 1354744 kB
VmHWM:	  126040 kB
VmRSS:	  125980 kB
`

const smapsRollup = `7ffd1c000000-7ffd1c021000 ---p 00000000 00:00 0                          [rollup]
Rss:               12488 kB
Pss:               11278 kB
Pss_Dirty:          2856 kB
`

func TestStatusKiB(t *testing.T) {
	tests := []struct {
		text, key string
		want      uint64
		ok        bool
	}{
		{procStatus, "VmHWM", 126040, true},
		{procStatus, "VmRSS", 125980, true},
		{smapsRollup, "Pss", 11278, true}, // not Pss_Dirty
		{procStatus, "VmSwap", 0, false},
		{procStatus, "State", 0, false}, // not "N kB"
	}
	for _, tt := range tests {
		got, err := statusKiB(tt.text, tt.key)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("%s: got %d, %v; want %d, ok=%v", tt.key, got, err, tt.want, tt.ok)
		}
	}
}

func TestReadStamp(t *testing.T) {
	path := t.TempDir() + "/stamp"
	if _, err := readStamp(path); err == nil || !strings.Contains(err.Error(), "not recorded") {
		t.Errorf("missing stamp: %v", err)
	}
}

func TestQEMUArgs_MicrovmWithI8042(t *testing.T) {
	args := strings.Join(qemuArgs(vmSpec{kernel: "k.bzImage", memMiB: 128, cmdline: "console=ttyS0 touch=1"}), " ")
	for _, want := range []string{"-M microvm", "-device i8042", "-no-reboot", "-m 128M", "-kernel k.bzImage", "-append console=ttyS0 touch=1"} {
		if !strings.Contains(args, want) {
			t.Errorf("%q lacks %q", args, want)
		}
	}
}
