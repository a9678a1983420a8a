package blk

import (
	"sync"
	"testing"
	"time"
)

// TestResidentPages_KnowsWhatWasMarked: every page a marked range touches
// is known, a page next to it is not, across the words and chunks of the
// bitmap.
func TestResidentPages_KnowsWhatWasMarked(t *testing.T) {
	const size = 3 * chunkPages << pageShift
	tests := []struct {
		name    string
		off, n  int64
		known   []int64 // pages known after the mark
		unknown []int64 // pages next to them, not known
	}{
		{name: "one byte", off: 5, n: 1, known: []int64{0}, unknown: []int64{1}},
		{name: "unaligned 4 KiB", off: 100, n: 4096, known: []int64{0, 1}, unknown: []int64{2}},
		{name: "word boundary", off: 62 << pageShift, n: 3 << pageShift, known: []int64{62, 63, 64}, unknown: []int64{61, 65}},
		{name: "chunk boundary", off: (chunkPages - 1) << pageShift, n: 2 << pageShift, known: []int64{chunkPages - 1, chunkPages}, unknown: []int64{chunkPages - 2, chunkPages + 1}},
		{name: "last page", off: size - 1, n: 1, known: []int64{size>>pageShift - 1}, unknown: []int64{size>>pageShift - 2}},
		{name: "many words", off: 10 << pageShift, n: 200 << pageShift, known: []int64{10, 63, 64, 127, 128, 209}, unknown: []int64{9, 210}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newResidentPages(size, time.Hour)
			defer r.forget()
			r.mark(tt.off, tt.n)
			if !r.known(tt.off, tt.n) {
				t.Errorf("known(%d, %d) = false after marking it", tt.off, tt.n)
			}
			for _, p := range tt.known {
				if !r.known(p<<pageShift, 1<<pageShift) {
					t.Errorf("page %d not known", p)
				}
			}
			for _, p := range tt.unknown {
				if r.known(p<<pageShift, 1) {
					t.Errorf("page %d known, never marked", p)
				}
			}
		})
	}
}

// TestResidentPages_OutOfRange: a range outside the file, empty or
// overflowing is never known, and marking one changes nothing.
func TestResidentPages_OutOfRange(t *testing.T) {
	r := newResidentPages(1<<20, time.Hour)
	defer r.forget()
	r.mark(0, 1<<20)
	for _, c := range []struct{ off, n int64 }{
		{-1, 1}, {0, 0}, {0, -1}, {1 << 40, 1}, {1, 1<<63 - 1}, {1<<63 - 1, 1},
	} {
		r.mark(c.off, c.n)
		if r.known(c.off, c.n) {
			t.Errorf("known(%d, %d) = true", c.off, c.n)
		}
	}
}

// TestResidentPages_Forgets: what was marked is forgotten after
// forgetAfter, and a mark after that arms the next forget.
func TestResidentPages_Forgets(t *testing.T) {
	r := newResidentPages(1<<20, 20*time.Millisecond)
	for round := range 2 {
		r.mark(4096, 4096)
		if !r.known(4096, 4096) {
			t.Fatalf("round %d: not known right after the mark", round)
		}
		deadline := time.Now().Add(5 * time.Second)
		for r.known(4096, 4096) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: still known 5 s after marking, forgetAfter 20 ms", round)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// TestResidentPages_ConcurrentMarkForget: marks, asks and forgets at once
// are safe (run with -race), and a mark made after the last forget stands.
func TestResidentPages_ConcurrentMarkForget(t *testing.T) {
	r := newResidentPages(2*chunkPages<<pageShift, time.Hour)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				off := int64((g*2000+i)%(2*chunkPages)) << pageShift
				r.mark(off, 8192)
				r.known(off, 8192)
				if i%100 == 0 {
					r.forget()
				}
			}
		})
	}
	wg.Wait()
	r.forget()
	r.mark(0, 4096)
	if !r.known(0, 4096) {
		t.Error("a mark after every forget is not known")
	}
	r.forget()
}
