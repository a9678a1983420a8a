package main

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

func TestWritePlot_DecodablePNG(t *testing.T) {
	rep := testReport()
	rate := Result{Suite: "burst", Metric: "launch rate", Unit: "VMs/core/s", HigherIsBetter: true,
		VMM: sample(50), Peer: sample(17)}
	rate.setGoal(goal{Min: 5})
	results := append(rep.Results, rate)
	path := filepath.Join(t.TempDir(), "p.png")
	if err := writePlot(path, results); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	// Two rows with a ratio; the skipped Linux row has none.
	if w, h := img.Bounds().Dx(), img.Bounds().Dy(); w != plotW || h < 2*rowH {
		t.Errorf("size %dx%d", w, h)
	}
}

func TestGlyphs_AllDecode(t *testing.T) {
	for r := range font5x7 {
		if len(glyph(r)) != 7 {
			t.Errorf("glyph %q", r)
		}
	}
	if g := glyph('é'); !bytes.Equal(g, glyph('?')) {
		t.Error("an unknown rune should draw as ?")
	}
}

// TestDrawPlot_Whiskers: a ratio with an interval gets a whisker; one
// from too few runs for an interval does not.
func TestDrawPlot_Whiskers(t *testing.T) {
	count := func(vmm, peer []float64) int {
		img := drawPlot([]Result{{Suite: "exits", Metric: "port", Unit: "exits/s", HigherIsBetter: true,
			VMM: Sample{Values: vmm}, Peer: Sample{Values: peer}}})
		n := 0
		for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
			for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
				if img.RGBAAt(x, y) == colWhisker {
					n++
				}
			}
		}
		return n
	}
	with := count(spread(100, 60, 9), spread(100, 60, 9))
	without := count([]float64{90, 110}, []float64{90, 110})
	if with <= without+20 {
		t.Errorf("%d whisker-coloured pixels with an interval, %d without", with, without)
	}
}
