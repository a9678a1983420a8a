package main

import (
	"slices"
	"strings"
	"testing"
)

func sample(v ...float64) Sample { return Sample{Values: v} }

func TestGoal(t *testing.T) {
	tests := []struct {
		name string
		g    goal
		r    Result
		text string
		met  string // "yes", "no", "—"
	}{
		{"time and ratio met", goal{Max: 5, MaxRatio: 0.2}, Result{Unit: "ms", VMM: sample(4, 3, 5), Peer: sample(40, 50)},
			"≤ 5 ms and ≤ 0.2 × peer", "yes"},
		{"time met, ratio not", goal{Max: 5, MaxRatio: 0.2}, Result{Unit: "ms", VMM: sample(4), Peer: sample(10)},
			"≤ 5 ms and ≤ 0.2 × peer", "no"},
		{"ratio without a peer", goal{MaxRatio: 0.3}, Result{Unit: "MiB", VMM: sample(4)}, "≤ 0.3 × peer", "no"},
		{"rate", goal{Min: 5}, Result{Unit: "VMs/core/s", VMM: sample(5, 6, 7)}, "≥ 5 VMs/core/s", "yes"},
		{"rate too low", goal{Min: 5}, Result{Unit: "VMs/core/s", VMM: sample(4.9)}, "≥ 5 VMs/core/s", "no"},
		{"at least the peer", goal{MinRatio: 1}, Result{Unit: "exits/s", VMM: sample(90), Peer: sample(100)}, "≥ 1 × peer", "no"},
		{"at least 0.9 × peer", goal{MinRatio: 0.9}, Result{Unit: "MB/s", VMM: sample(95), Peer: sample(100)}, "≥ 0.9 × peer", "yes"},
		{"no values", goal{Max: 5}, Result{Unit: "ms"}, "≤ 5 ms", "—"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.r
			r.setGoal(tt.g)
			if r.Target != tt.text || formatMet(r.Met) != tt.met {
				t.Errorf("target %q met %s; want %q %s", r.Target, formatMet(r.Met), tt.text, tt.met)
			}
		})
	}
}

func TestFormatValue(t *testing.T) {
	for v, want := range map[float64]string{1234.4: "1234", 56.74: "56.7", 8.914: "8.91", 0.1234: "0.123", 0: "0.00"} {
		if got := formatValue(v); got != want {
			t.Errorf("formatValue(%v) = %q; want %q", v, got, want)
		}
	}
}

func testReport() Report {
	r := Result{Suite: "start-up", Metric: "process start to first KVM_RUN", Unit: "ms", PeerName: "QEMU microvm",
		VMM: sample(12, 10, 11, 30, 9), Peer: sample(50, 40, 60, 45, 55)}
	r.setGoal(goal{Max: 5, MaxRatio: 0.2})
	return Report{
		Machine: Machine{CPU: "AMD EPYC", Cores: 2, Kernel: "Linux 6.18", KVM: "kvm_pvm (software virtualization)", QEMU: "QEMU 7.2", Date: "2026-11-26"},
		Runs:    5,
		Results: []Result{r, {Suite: "linux", Metric: "Linux boot", Unit: "ms", Note: "skipped: no | hardware"}},
	}
}

func TestReport_Text(t *testing.T) {
	text := testReport().Text()
	for _, want := range []string{
		"machine: AMD EPYC, 2 cores; Linux 6.18; KVM: kvm_pvm",
		"start-up: process start to first KVM_RUN  11.0 (9.00–30.0) ms   QEMU microvm: 50.0 (40.0–60.0) ms  0.220× (0.167–0.600)     ≤ 5 ms and ≤ 0.2 × peer  no\n",
		"linux: Linux boot",
		"skipped (see notes)",
		"- linux: Linux boot: skipped: no | hardware",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
}

func TestReport_Markdown(t *testing.T) {
	md := testReport().Markdown()
	for _, want := range []string{
		"| metric | vmm median (min–max) | peer median (min–max) | vmm/peer (95% interval) | target | met |\n|---|---|---|---|---|---|\n",
		"| start-up: process start to first KVM_RUN | 11.0 (9.00–30.0) ms | QEMU microvm: 50.0 (40.0–60.0) ms | 0.220× (0.167–0.600) | ≤ 5 ms and ≤ 0.2 × peer | no |\n",
		"| linux: Linux boot | skipped (see notes) | — | — | — | — |\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestSelectSuites(t *testing.T) {
	all := []suite{{name: "start-up"}, {name: "memory"}, {name: "burst"}}
	got, err := selectSuites(all, "burst,start-up")
	if err != nil || len(got) != 2 || got[0].name != "burst" || got[1].name != "start-up" {
		t.Errorf("got %v, %v", got, err)
	}
	if got, _ := selectSuites(all, ""); len(got) != 3 {
		t.Errorf("empty -only kept %d suites", len(got))
	}
	if _, err := selectSuites(all, "nope"); err == nil || !strings.Contains(err.Error(), "start-up, memory, burst") {
		t.Errorf("unknown suite: %v", err)
	}
}

func TestBaselineSuites_KeepsTheGuestSuites(t *testing.T) {
	all := []suite{{name: "memory"}, {name: "exits", baseline: true}, {name: "virtio-net", baseline: true}}
	got, err := baselineSuites(all, false)
	if err != nil || len(got) != 2 || got[0].name != "exits" || got[1].name != "virtio-net" {
		t.Errorf("got %v, %v", got, err)
	}
	if _, err := baselineSuites(all[:1], true); err == nil || !strings.Contains(err.Error(), "memory compares vmm with QEMU only") {
		t.Errorf("a named suite without a baseline mode: %v", err)
	}
}

func TestGuestSuite_WithBaseline_RunsTheGuestUnderTheOtherBuild(t *testing.T) {
	g := guestSuite{Peer: peerQ35,
		VMM:     func() guestCmd { return guestCmd{Argv: []string{"/new/vmm", "boot", "--kernel", "k"}, NetNS: "ns"} },
		PeerCmd: func() guestCmd { return guestCmd{Argv: []string{"qemu"}} },
	}.withBaseline("/old/vmm")
	c := g.PeerCmd()
	if g.Peer != "vmm baseline" || strings.Join(c.Argv, " ") != "/old/vmm boot --kernel k" || c.NetNS != "ns" {
		t.Errorf("peer %q runs %q in %q", g.Peer, c.Argv, c.NetNS)
	}
	if v := g.VMM(); v.Argv[0] != "/new/vmm" {
		t.Errorf("the measured side became %q", v.Argv)
	}
}

func TestCommand_Baseline_BootsTheOtherBuildWithItsTrace(t *testing.T) {
	e := &Env{Options: Options{VMM: "/new/vmm", QEMU: "/usr/bin/qemu", Baseline: "/old/vmm"}}
	spec := vmSpec{kernel: "k", memMiB: 128, cmdline: "console=ttyS0"}
	for s, want := range map[side]string{sideVMM: "/new/vmm", sidePeer: "/old/vmm"} {
		cmd := e.command(s, spec)
		if cmd.Path != want || !slices.Contains(cmd.Args, "--compat=off") || !slices.Contains(cmd.Env, "VMM_TRACE_STARTUP=1") {
			t.Errorf("%v side runs %s %q, env has trace: %v", s, cmd.Path, cmd.Args, slices.Contains(cmd.Env, "VMM_TRACE_STARTUP=1"))
		}
	}
	e.Baseline = ""
	if cmd := e.command(sidePeer, spec); cmd.Path != "/usr/bin/qemu" {
		t.Errorf("without a baseline the peer runs %s", cmd.Path)
	}
}
