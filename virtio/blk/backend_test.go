package blk_test

import (
	"sync"
	"testing"
	"time"
)

// Fake backends that let a test see and hold the requests the device's
// workers have inside the backend.

// watchdog is how long a test waits for something its backend needs
// before it fails instead of hanging. It bounds liveness only: no test
// asserts that anything is fast.
const watchdog = 30 * time.Second

// await receives from ch, failing the test if nothing comes.
func await(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(watchdog):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// Backend operations, as a hookDisk reports them.
const (
	opRead  = 'r'
	opWrite = 'w'
	opFlush = 'f'
)

// backendOp is one call a hookDisk saw.
type backendOp struct {
	op  byte
	off int64
}

// hookDisk is a memDisk that calls hook, on the worker's goroutine, at the
// start of every ReadAt, WriteAt and Flush, and logs the calls and the
// most that were inside the backend at once. Set hook before the device
// runs a request.
type hookDisk struct {
	*memDisk
	hook func(op byte, off int64)

	mu     sync.Mutex
	log    []backendOp
	inside int
	most   int
}

func newHookDisk(sectors int) *hookDisk { return &hookDisk{memDisk: newMemDisk(sectors)} }

func (h *hookDisk) enter(op byte, off int64) {
	h.mu.Lock()
	h.log = append(h.log, backendOp{op, off})
	h.inside++
	h.most = max(h.most, h.inside)
	h.mu.Unlock()
	if h.hook != nil {
		h.hook(op, off)
	}
}

func (h *hookDisk) leave() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.inside--
}

func (h *hookDisk) ReadAt(p []byte, off int64) (int, error) {
	h.enter(opRead, off)
	defer h.leave()
	return h.memDisk.ReadAt(p, off)
}

func (h *hookDisk) WriteAt(p []byte, off int64) (int, error) {
	h.enter(opWrite, off)
	defer h.leave()
	return h.memDisk.WriteAt(p, off)
}

func (h *hookDisk) Flush() error {
	h.enter(opFlush, 0)
	defer h.leave()
	return h.memDisk.Flush()
}

// calls returns the log so far and how many calls are inside now.
func (h *hookDisk) calls() ([]backendOp, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]backendOp(nil), h.log...), h.inside
}

// mostInside is the most calls that were inside the backend at once.
func (h *hookDisk) mostInside() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.most
}

// barrier is a hook that holds every call until n are held at once, then
// lets all through, and every later call too: a device that ran fewer
// than n requests at once would never open it. It opens anyway after the
// watchdog so a failing test ends; the test then sees too few in
// mostInside.
type barrier struct {
	n    int
	mu   sync.Mutex
	seen int
	open chan struct{}
	once sync.Once
}

func newBarrier(n int) *barrier { return &barrier{n: n, open: make(chan struct{})} }

func (b *barrier) hook(byte, int64) {
	b.mu.Lock()
	b.seen++
	if b.seen == b.n {
		b.once.Do(func() { close(b.open) })
	}
	b.mu.Unlock()
	select {
	case <-b.open:
	case <-time.After(watchdog):
		b.once.Do(func() { close(b.open) })
	}
}

// holder is a hook that reports each call on arrived and holds it until
// release is closed.
type holder struct {
	arrived chan struct{}
	release chan struct{}
}

func newHolder(n int) *holder {
	return &holder{arrived: make(chan struct{}, n), release: make(chan struct{})}
}

func (h *holder) hook(byte, int64) {
	h.arrived <- struct{}{}
	select {
	case <-h.release:
	case <-time.After(watchdog): // the test has failed; let the worker end
	}
}

// wait waits for n calls to arrive.
func (h *holder) wait(t testing.TB, n int) {
	t.Helper()
	for range n {
		await(t, h.arrived, "a request to reach the backend")
	}
}
