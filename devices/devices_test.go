package devices

import (
	"bytes"
	"sync"
	"testing"
)

// fakeIRQ records every level a device sends.
type fakeIRQ struct {
	mu     sync.Mutex
	levels []bool
	err    error
}

func (f *fakeIRQ) SetLevel(high bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.levels = append(f.levels, high)
	return f.err
}

// high reports the last level sent; the line starts low.
func (f *fakeIRQ) high() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.levels) > 0 && f.levels[len(f.levels)-1]
}

func (f *fakeIRQ) history() []bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]bool(nil), f.levels...)
}

func newTestSerial(t *testing.T) (*Serial, *fakeIRQ, *bytes.Buffer) {
	t.Helper()
	irq := &fakeIRQ{}
	out := &bytes.Buffer{}
	return NewSerial(irq, out), irq, out
}

func rd(s *Serial, off uint64) byte {
	var b [1]byte
	s.Read(off, b[:])
	return b[0]
}

func wr(s *Serial, off uint64, v byte) { s.Write(off, []byte{v}) }
