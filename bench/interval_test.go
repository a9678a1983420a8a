package main

import (
	"math"
	"testing"
)

func spread(center, width float64, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = center + width*(float64(i)/float64(n-1)-0.5)
	}
	return v
}

// TestRatioInterval_HoldsTheRatio: the interval holds the ratio of medians,
// is one point when neither side varies, and is the same every time.
func TestRatioInterval_HoldsTheRatio(t *testing.T) {
	r := Result{VMM: Sample{Values: spread(100, 40, 9)}, Peer: Sample{Values: spread(200, 40, 9)}}
	lo, hi, ok := r.RatioInterval()
	if !ok || !(lo < r.Ratio() && r.Ratio() < hi) {
		t.Fatalf("interval %v–%v (ok %v) does not hold the ratio %v", lo, hi, ok, r.Ratio())
	}
	if lo < 80.0/220 || hi > 120.0/180 {
		t.Errorf("interval %v–%v reaches past the most extreme ratio of the runs", lo, hi)
	}
	if lo2, hi2, _ := r.RatioInterval(); lo2 != lo || hi2 != hi {
		t.Errorf("a second draw gave %v–%v, the first %v–%v", lo2, hi2, lo, hi)
	}
	// Each side's noise counts, the peer's as much as vmm's.
	for _, r := range []Result{
		{VMM: Sample{Values: []float64{5, 5, 5, 5, 5}}, Peer: Sample{Values: spread(10, 4, 9)}},
		{VMM: Sample{Values: spread(5, 2, 9)}, Peer: Sample{Values: []float64{10, 10, 10, 10, 10}}},
	} {
		if lo, hi, _ := r.RatioInterval(); !(lo < 0.5 && 0.5 < hi) {
			t.Errorf("vmm %v, peer %v: interval %v–%v is not around 0.5", r.VMM.Values, r.Peer.Values, lo, hi)
		}
	}
	flat := Result{VMM: Sample{Values: []float64{3, 3, 3}}, Peer: Sample{Values: []float64{2, 2, 2}}}
	if lo, hi, ok := flat.RatioInterval(); !ok || lo != 1.5 || hi != 1.5 {
		t.Errorf("constant runs: %v–%v (ok %v), want 1.5–1.5", lo, hi, ok)
	}
}

// TestRatioInterval_NarrowsWithRuns: more runs of the same spread give a
// narrower interval, and noisier runs a wider one.
func TestRatioInterval_NarrowsWithRuns(t *testing.T) {
	width := func(center, noise float64, n int) float64 {
		r := Result{VMM: Sample{Values: spread(center, noise, n)}, Peer: Sample{Values: spread(center, noise, n)}}
		lo, hi, ok := r.RatioInterval()
		if !ok {
			t.Fatalf("no interval for %d runs", n)
		}
		return hi - lo
	}
	if few, many := width(100, 20, 5), width(100, 20, 41); !(many < few) {
		t.Errorf("41 runs: width %v, 5 runs: %v; want narrower with more", many, few)
	}
	if quiet, noisy := width(100, 5, 9), width(100, 40, 9); !(quiet < noisy) {
		t.Errorf("quiet runs: width %v, noisy: %v", quiet, noisy)
	}
}

// TestRatioInterval_NeedsRunsAndPeer: no interval from fewer than three
// runs a side or without a peer figure.
func TestRatioInterval_NeedsRunsAndPeer(t *testing.T) {
	for _, r := range []Result{
		{VMM: Sample{Values: []float64{1, 2}}, Peer: Sample{Values: []float64{1, 2, 3}}},
		{VMM: Sample{Values: []float64{1, 2, 3}}, Peer: Sample{Values: []float64{1, 2}}},
		{VMM: Sample{Values: []float64{1, 2, 3}}},
		{VMM: Sample{Values: []float64{1, 2, 3}}, Peer: Sample{Values: []float64{0, 0, 0}}},
	} {
		if lo, hi, ok := r.RatioInterval(); ok {
			t.Errorf("%+v: interval %v–%v", r, lo, hi)
		}
	}
	rs := []Result{{VMM: Sample{Values: []float64{1, 2, 3}}, Peer: Sample{Values: []float64{2, 2, 2}}}, {VMM: Sample{Values: []float64{1}}}}
	withIntervals(rs)
	if len(rs[0].RatioCI) != 2 || math.IsNaN(rs[0].RatioCI[0]) || rs[1].RatioCI != nil {
		t.Errorf("withIntervals: %v and %v", rs[0].RatioCI, rs[1].RatioCI)
	}
}
