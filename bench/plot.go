package main

import (
	"encoding/hex"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"strconv"
	"strings"
)

// The plot: one horizontal bar per metric that has a peer figure, from the
// 1× line to vmm's median over the peer's, on a log scale; green where vmm
// does better (smaller, or for rates larger), red where it does worse; a
// black mark at a "≤ k × peer" or "≥ k × peer" target. Text is drawn with a small built-in
// 5×7 font (no font module is a dependency).

const (
	plotScale  = 2  // pixels per font pixel
	glyphW     = 6  // 5 columns and a gap
	glyphH     = 8  // 7 rows and a gap
	rowH       = 34 // one metric
	barH       = 18
	plotW      = 1500
	plotMargin = 16
	valueW     = 190 // right of the bars: "0.123× MISSED"
	maxLabel   = 60  // characters of a metric's name
)

var (
	colBG      = color.RGBA{0xff, 0xff, 0xff, 0xff}
	colText    = color.RGBA{0x20, 0x20, 0x20, 0xff}
	colGrid    = color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	colOne     = color.RGBA{0x40, 0x40, 0x40, 0xff}
	colBetter  = color.RGBA{0x2e, 0x9e, 0x4f, 0xff}
	colWorse   = color.RGBA{0xd0, 0x3b, 0x3b, 0xff}
	colTarget  = color.RGBA{0x00, 0x00, 0x00, 0xff}
	colWhisker = color.RGBA{0x40, 0x40, 0x40, 0xff}
)

func writePlot(path string, results []Result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, drawPlot(results)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// drawPlot draws the results that have a ratio.
func drawPlot(results []Result) *image.RGBA {
	var rows []Result
	lo, hi := 0.1, 10.0
	labelChars := 0
	for _, r := range results {
		q := r.Ratio()
		if q <= 0 {
			continue
		}
		rows = append(rows, r)
		lo, hi = math.Min(lo, q), math.Max(hi, q)
		if g := r.goal.ratio(); g > 0 {
			lo, hi = math.Min(lo, g), math.Max(hi, g)
		}
		if a, b, ok := r.RatioInterval(); ok {
			lo, hi = math.Min(lo, a), math.Max(hi, b)
		}
		labelChars = max(labelChars, len([]rune(plotLabel(r))))
	}
	lo, hi = math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi)))

	cw := glyphW * plotScale
	labelW := min(labelChars, maxLabel)*cw + plotMargin
	x0, x1 := plotMargin+labelW, plotW-plotMargin-valueW
	top := plotMargin + 2*glyphH*plotScale
	height := top + len(rows)*rowH + 4*glyphH*plotScale + plotMargin
	img := image.NewRGBA(image.Rect(0, 0, plotW, height))
	draw.Draw(img, img.Bounds(), &image.Uniform{colBG}, image.Point{}, draw.Src)
	xOf := func(q float64) int {
		return x0 + int(math.Round(float64(x1-x0)*(math.Log10(q)-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo))))
	}

	drawText(img, plotMargin, plotMargin, "vmm / peer, medians, log scale, whiskers: 95% interval", colText)
	bottom := top + len(rows)*rowH
	for d := lo; d <= hi*1.001; d *= 10 {
		x := xOf(d)
		c := colGrid
		if math.Abs(d-1) < 1e-9 {
			c = colOne
		}
		fillRect(img, x, top-4, x+1, bottom+4, c)
		s := formatTick(d)
		drawText(img, x-len(s)*cw/2, bottom+8, s, colText)
	}
	for i, r := range rows {
		y := top + i*rowH
		label := []rune(plotLabel(r))
		if len(label) > maxLabel {
			label = append(label[:maxLabel-1], '.')
		}
		drawText(img, plotMargin, y+(rowH-glyphH*plotScale)/2+2, string(label), colText)
		q := r.Ratio()
		c := colWorse
		if (q < 1) != r.HigherIsBetter {
			c = colBetter
		}
		xa, xb := xOf(1), xOf(q)
		fillRect(img, min(xa, xb), y+(rowH-barH)/2, max(xa, xb)+1, y+(rowH+barH)/2, c)
		if a, b, ok := r.RatioInterval(); ok {
			xa, xb, mid := xOf(a), xOf(b), y+rowH/2
			fillRect(img, xa, mid-1, xb+1, mid+1, colWhisker)
			fillRect(img, xa, mid-barH/4, xa+1, mid+barH/4, colWhisker)
			fillRect(img, xb, mid-barH/4, xb+1, mid+barH/4, colWhisker)
		}
		if g := r.goal.ratio(); g > 0 {
			x := xOf(g)
			fillRect(img, x-1, y+2, x+2, y+rowH-2, colTarget)
		}
		v := formatValue(q) + "×"
		switch {
		case r.Met == nil:
		case *r.Met:
			v += " met"
		default:
			v += " missed"
		}
		drawText(img, x1+plotMargin, y+(rowH-glyphH*plotScale)/2+2, v, colText)
	}
	ly := bottom + 8 + 2*glyphH*plotScale
	x := plotMargin
	for _, l := range []struct {
		c    color.RGBA
		w    int
		text string
	}{{colBetter, 24, "vmm better"}, {colWorse, 24, "vmm worse"}, {colTarget, 3, "target (k × peer)"}} {
		fillRect(img, x, ly, x+l.w, ly+glyphH*plotScale-2, l.c)
		x += l.w + cw
		drawText(img, x, ly, l.text, colText)
		x += (len([]rune(l.text)) + 3) * cw
	}
	return img
}

func plotLabel(r Result) string { return r.Suite + ": " + r.Metric }

func formatTick(d float64) string { return strconv.FormatFloat(d, 'g', -1, 64) + "×" }

func fillRect(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	draw.Draw(img, image.Rect(x0, y0, x1, y1), &image.Uniform{c}, image.Point{}, draw.Src)
}

// drawText writes s in capitals with the 5×7 font, top-left at x, y.
func drawText(img *image.RGBA, x, y int, s string, c color.RGBA) {
	for _, r := range strings.ToUpper(s) {
		rows := glyph(r)
		for gy, bits := range rows {
			for gx := range 5 {
				if bits&(0x10>>gx) != 0 {
					px, py := x+gx*plotScale, y+gy*plotScale
					fillRect(img, px, py, px+plotScale, py+plotScale, c)
				}
			}
		}
		x += glyphW * plotScale
	}
}

// glyph is a rune's 7 rows, 5 bits each (the HD44780's 5×7 shapes).
func glyph(r rune) []byte {
	if r == '−' || r == '–' {
		r = '-'
	}
	h, ok := font5x7[r]
	if !ok {
		h = font5x7['?']
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 7 {
		panic("bad glyph for " + string(r)) // the table below is constant
	}
	return b
}

var font5x7 = map[rune]string{
	' ': "00000000000000", '?': "0e110102040004", '.': "00000000000c0c", ',': "00000000000c04",
	'-': "0000001f000000", '_': "0000000000001f", '/': "00010204081000", ':': "000c0c000c0c00",
	'(': "02040808080402", ')': "08040202020408", '%': "18190204081303", '+': "0004041f040400",
	'=': "00001f001f0000", '<': "02040810080402", '>': "08040201020408", '\'': "0c040800000000",
	'×': "00110a040a1100", '≤': "0204080402001f", '≥': "0804020408001f",
	'0': "0e11131519110e", '1': "040c040404040e", '2': "0e11010204081f", '3': "1f02040201110e",
	'4': "02060a121f0202", '5': "1f101e0101110e", '6': "0608101e11110e", '7': "1f010204080808",
	'8': "0e11110e11110e", '9': "0e11110f01020c",
	'A': "0e1111111f1111", 'B': "1e11111e11111e", 'C': "0e11101010110e", 'D': "1c12111111121c",
	'E': "1f10101e10101f", 'F': "1f10101e101010", 'G': "0e11101711110f", 'H': "1111111f111111",
	'I': "0e04040404040e", 'J': "0702020202120c", 'K': "11121418141211", 'L': "1010101010101f",
	'M': "111b1515111111", 'N': "11111915131111", 'O': "0e11111111110e", 'P': "1e11111e101010",
	'Q': "0e11111115120d", 'R': "1e11111e141211", 'S': "0f10100e01011e", 'T': "1f040404040404",
	'U': "1111111111110e", 'V': "11111111110a04", 'W': "1111111515150a", 'X': "11110a040a1111",
	'Y': "1111110a040404", 'Z': "1f01020408101f",
}
