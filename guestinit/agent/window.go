package agent

import (
	"errors"
	"sync"
)

// errWindow is a host sending more than Window unacknowledged bytes.
var errWindow = errors.New("more unacknowledged data than the window allows")

// window is the host's count of a request's unacknowledged bytes.
type window struct {
	mu       sync.Mutex
	cond     *sync.Cond
	inFlight int
	stopped  bool
}

func newWindow() *window {
	w := &window{}
	w.cond = sync.NewCond(&w.mu)
	return w
}

// acquire waits until n more bytes fit; false once stop was called.
func (w *window) acquire(n int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for !w.stopped && w.inFlight+n > Window {
		w.cond.Wait()
	}
	if w.stopped {
		return false
	}
	w.inFlight += n
	return true
}

// release takes an Ack of n bytes.
func (w *window) release(n uint32) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.inFlight = max(0, w.inFlight-int(n))
	w.cond.Broadcast()
}

// stop wakes every acquire for good: the request is over.
func (w *window) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.cond.Broadcast()
}

// inbox is the guest's queue of a request's incoming data: the frame
// reader pushes, the request's goroutine takes. It holds at most Window
// bytes, which a host that honours Acks never exceeds.
type inbox struct {
	mu     sync.Mutex
	cond   *sync.Cond
	chunks [][]byte
	bytes  int
	ended  bool // the end frame came
	closed bool // the request is over: pushes are dropped, takes fail
}

func newInbox() *inbox {
	in := &inbox{}
	in.cond = sync.NewCond(&in.mu)
	return in
}

// push queues a copy of data.
func (in *inbox) push(data []byte) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	switch {
	case in.closed:
		return nil
	case in.ended:
		return errors.New("data after the end of the stream")
	case in.bytes+len(data) > Window:
		return errWindow
	}
	in.chunks = append(in.chunks, append([]byte(nil), data...))
	in.bytes += len(data)
	in.cond.Broadcast()
	return nil
}

// end marks the end of the data.
func (in *inbox) end() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.ended = true
	in.cond.Broadcast()
}

// close ends the request's side: take returns done, pushes are dropped.
func (in *inbox) close() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.closed = true
	in.chunks, in.bytes = nil, 0
	in.cond.Broadcast()
}

// take returns the next chunk; done once the data ended or close was
// called. The chunk still counts against the window until the caller
// acknowledges it with done(len).
func (in *inbox) take() (chunk []byte, done bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for len(in.chunks) == 0 && !in.ended && !in.closed {
		in.cond.Wait()
	}
	if in.closed || len(in.chunks) == 0 {
		return nil, true
	}
	chunk = in.chunks[0]
	in.chunks[0] = nil
	in.chunks = in.chunks[1:]
	return chunk, false
}

// consumed frees n bytes of the window once they are written out.
func (in *inbox) consumed(n int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.bytes = max(0, in.bytes-n)
}
