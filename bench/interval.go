package main

import (
	"math/rand/v2"
	"slices"
)

// How the ratio's interval is drawn: resamples of each side's runs, and
// the fixed seed that makes a report's intervals the same every time it is
// rendered from the same values.
const (
	intervalResamples = 2000
	intervalSeed      = 0x766d6d // "vmm"
	intervalMinRuns   = 3
)

// RatioInterval is a 95% percentile-bootstrap interval for Ratio: each
// side's runs are drawn again with replacement, the ratio of the two
// medians taken, 2,000 times, and the 2.5th and 97.5th percentiles kept.
// It shows how far the ratio could move with this machine's noise alone;
// a target inside it is neither met nor missed beyond that noise. The runs
// are treated as independent (the bench alternates the sides to make them
// so). ok is false with fewer than three runs a side or no peer figure.
func (r Result) RatioInterval() (lo, hi float64, ok bool) {
	v, p := r.VMM.Values, r.Peer.Values
	if len(v) < intervalMinRuns || len(p) < intervalMinRuns || r.Ratio() == 0 {
		return 0, 0, false
	}
	rng := rand.New(rand.NewPCG(intervalSeed, uint64(len(v))<<32|uint64(len(p))))
	bv, bp := make([]float64, len(v)), make([]float64, len(p))
	ratios := make([]float64, 0, intervalResamples)
	for range intervalResamples {
		for i := range bv {
			bv[i] = v[rng.IntN(len(v))]
		}
		for i := range bp {
			bp[i] = p[rng.IntN(len(p))]
		}
		if m := (Sample{Values: bp}).Median(); m != 0 {
			ratios = append(ratios, Sample{Values: bv}.Median()/m)
		}
	}
	if len(ratios) == 0 {
		return 0, 0, false
	}
	slices.Sort(ratios)
	at := func(q float64) float64 { return ratios[min(len(ratios)-1, int(q*float64(len(ratios))))] }
	return at(0.025), at(0.975), true
}

// withIntervals fills each result's RatioCI for the JSON report.
func withIntervals(rs []Result) {
	for i := range rs {
		if lo, hi, ok := rs[i].RatioInterval(); ok {
			rs[i].RatioCI = []float64{lo, hi}
		}
	}
}
