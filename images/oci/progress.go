package oci

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// progressBar draws one line, redrawn in place with \r, while blobs
// download. go-containerregistry's remote.WithProgress reports only pushes,
// so the bytes are counted here as they are written to the store.
type progressBar struct {
	w           io.Writer
	label       string
	total, done int64
	drawn       time.Time
}

const (
	barWidth    = 30
	barInterval = 100 * time.Millisecond
)

// newProgressBar returns a bar on w, or nil (which draws nothing) when w is
// not a terminal: logs and pipes get no control characters.
func newProgressBar(w io.Writer, label string, total int64) *progressBar {
	if total <= 0 || !isTerminal(w) {
		return nil
	}
	return &progressBar{w: w, label: label, total: total}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// Write counts downloaded bytes; the bar is an io.Writer so it can sit in
// an io.MultiWriter next to the blob file.
func (b *progressBar) Write(p []byte) (int, error) {
	if b == nil {
		return len(p), nil
	}
	b.done += int64(len(p))
	if now := time.Now(); now.Sub(b.drawn) >= barInterval {
		b.drawn = now
		fmt.Fprint(b.w, "\r"+renderBar(b.label, b.done, b.total, barWidth))
	}
	return len(p), nil
}

// finish draws the final state and ends the line.
func (b *progressBar) finish() {
	if b == nil {
		return
	}
	fmt.Fprint(b.w, "\r"+renderBar(b.label, b.done, b.total, barWidth)+"\n")
}

// renderBar formats "LABEL [=====>    ]   1.2/3.4 MB".
func renderBar(label string, done, total int64, width int) string {
	done = min(max(done, 0), total)
	filled := 0
	if total > 0 {
		filled = int(int64(width) * done / total)
	}
	bar := strings.Repeat("=", filled)
	if filled < width {
		bar += ">" + strings.Repeat(" ", width-filled-1)
	}
	div, unit := sizeUnit(total)
	return fmt.Sprintf("%s [%s] %5.1f/%.1f %s", label, bar, float64(done)/div, float64(total)/div, unit)
}

// sizeUnit picks the decimal unit that shows total in a few digits.
func sizeUnit(total int64) (float64, string) {
	switch {
	case total >= 1e9:
		return 1e9, "GB"
	case total >= 1e6:
		return 1e6, "MB"
	case total >= 1e3:
		return 1e3, "kB"
	}
	return 1, "B"
}
