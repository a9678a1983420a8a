package main

import "testing"

func TestSample(t *testing.T) {
	s := Sample{Values: []float64{5, 1, 3, 9}}
	if s.Median() != 4 || s.Min() != 1 || s.Max() != 9 {
		t.Errorf("median %v min %v max %v", s.Median(), s.Min(), s.Max())
	}
	if (Sample{Values: []float64{2, 7, 1}}).Median() != 2 || (Sample{}).Median() != 0 {
		t.Error("odd or empty median")
	}
	r := Result{VMM: Sample{Values: []float64{10}}, Peer: Sample{Values: []float64{40}}}
	if r.Ratio() != 0.25 || (Result{VMM: s}).Ratio() != 0 {
		t.Errorf("ratio %v", r.Ratio())
	}
}
