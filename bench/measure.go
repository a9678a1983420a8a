package main

import (
	"slices"
)

// Result is one metric measured for vmm and, side by side in the same
// run, for its peer.
type Result struct {
	Suite  string `json:"suite"`  // "start-up", "memory", "exits", "virtio-blk", "virtio-net", "burst"
	Metric string `json:"metric"` // e.g. "process start to first KVM_RUN"
	Unit   string `json:"unit"`   // "ms", "MiB", "exits/s", "MB/s", "req/s", "VMs/s"
	// HigherIsBetter is true for rates, false for times and sizes.
	HigherIsBetter bool   `json:"higher_is_better"`
	VMM            Sample `json:"vmm"`
	// Peer is the same measurement of PeerName; empty when there is none.
	Peer     Sample `json:"peer"`
	PeerName string `json:"peer_name,omitempty"` // "QEMU microvm", "QEMU q35", "host"
	// Target is the goal for this metric, e.g. "≤ 5 ms and ≤ 0.2 × peer".
	Target string `json:"target,omitempty"`
	// Met says whether VMM meets Target; nil when there is no target.
	Met *bool `json:"met,omitempty"`
	// RatioCI is RatioInterval's 95% interval for the ratio, [low, high].
	RatioCI []float64 `json:"ratio_ci,omitempty"`

	Note string `json:"note,omitempty"`

	goal goal // what setGoal was given: the plot marks its ratio
}

// Sample is the values of one side's runs, in run order.
type Sample struct {
	Values []float64 `json:"values"`
}

func (s Sample) sorted() []float64 {
	v := slices.Clone(s.Values)
	slices.Sort(v)
	return v
}

// Median is the middle value (the mean of the two middle ones for an even
// count); 0 for no values.
func (s Sample) Median() float64 {
	v := s.sorted()
	switch n := len(v); {
	case n == 0:
		return 0
	case n%2 == 1:
		return v[n/2]
	default:
		return (v[n/2-1] + v[n/2]) / 2
	}
}

// Min and Max are the extremes; 0 for no values.
func (s Sample) Min() float64 {
	if len(s.Values) == 0 {
		return 0
	}
	return slices.Min(s.Values)
}

func (s Sample) Max() float64 {
	if len(s.Values) == 0 {
		return 0
	}
	return slices.Max(s.Values)
}

// Ratio is vmm's median over the peer's; 0 when there is no peer figure.
func (r Result) Ratio() float64 {
	p := r.Peer.Median()
	if p == 0 {
		return 0
	}
	return r.VMM.Median() / p
}
