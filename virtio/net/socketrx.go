package net

import (
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// RXQueueLen is how many received frames a Socket holds for the device.
//
// A unix datagram waiting in a socket's queue is charged to its sender,
// and a client connected to the switch lifts the kernel's per-socket
// limit (net.unix.max_dgram_qlen). On the port's link that sender is the
// link's own switch end, but a switch that takes no link sends from its
// one socket, so frames piling up for a VM that takes none (its driver
// not started, its interface down) would use up the switch's send
// buffer and stop it sending to every port. The Socket therefore always
// drains, into this bounded queue, and a VM that does not keep up loses
// only its own frames.
const RXQueueLen = 256

// rxQueue holds received frames between the Socket's drain goroutine and
// ReadPacket. It owns the read deadline too, since reads wait on it, not
// on the descriptor.
type rxQueue struct {
	dropped atomic.Uint64

	mu       sync.Mutex
	frames   [][]byte // received, oldest first
	free     [][]byte // buffers to receive into
	made     int      // buffers allocated, at most RXQueueLen
	deadline time.Time
	closed   bool
	err      error // why the drain goroutine stopped early, for take
	// changed is closed, and replaced, whenever a frame arrives, the
	// deadline moves or the queue closes: what a waiting take waits on.
	changed chan struct{}
}

func newRXQueue() *rxQueue { return &rxQueue{changed: make(chan struct{})} }

// notify wakes every waiting take. The caller holds mu.
func (q *rxQueue) notify() {
	close(q.changed)
	q.changed = make(chan struct{})
}

// buffer returns a buffer to receive a frame into, or nil when
// RXQueueLen frames are waiting already.
func (q *rxQueue) buffer() []byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	if n := len(q.free); n > 0 {
		b := q.free[n-1]
		q.free = q.free[:n-1]
		return b
	}
	if q.made == RXQueueLen {
		return nil
	}
	q.made++
	return make([]byte, MaxSocketFrame+1) // one byte more tells an oversize frame
}

// unused gives back a buffer that received nothing worth keeping.
func (q *rxQueue) unused(b []byte, fromQueue bool) {
	if !fromQueue {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.free = append(q.free, b[:cap(b)])
}

// push queues a received frame, a buffer from buffer.
func (q *rxQueue) push(f []byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.frames = append(q.frames, f)
	q.notify()
}

// take copies the oldest frame into p behind a zero header, waiting for
// one if wait is set. Past the deadline it fails with
// os.ErrDeadlineExceeded, once closed with os.ErrClosed, and once the
// queue is empty after fail with that error.
func (q *rxQueue) take(p []byte, wait bool) (int, error) {
	if len(p) < HeaderSize {
		return 0, io.ErrShortBuffer
	}
	for {
		q.mu.Lock()
		switch {
		case q.closed:
			q.mu.Unlock()
			return 0, &os.PathError{Op: "read", Path: "switch socket", Err: os.ErrClosed}
		case !q.deadline.IsZero() && !time.Now().Before(q.deadline):
			q.mu.Unlock()
			return 0, os.ErrDeadlineExceeded
		case len(q.frames) > 0:
			f := q.frames[0]
			q.frames[0] = nil
			q.frames = q.frames[1:]
			n := copy(p[HeaderSize:], f)
			q.free = append(q.free, f[:cap(f)])
			q.mu.Unlock()
			clear(p[:HeaderSize]) // no offload to describe; num_buffers is the device's
			return HeaderSize + n, nil
		case q.err != nil:
			q.mu.Unlock()
			return 0, q.err
		case !wait:
			q.mu.Unlock()
			return 0, ErrNoPacket
		}
		changed, deadline := q.changed, q.deadline
		q.mu.Unlock()
		q.wait(changed, deadline)
	}
}

// wait waits for changed, or until deadline if there is one.
func (q *rxQueue) wait(changed <-chan struct{}, deadline time.Time) {
	if deadline.IsZero() {
		<-changed
		return
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-changed:
	case <-t.C:
	}
}

func (q *rxQueue) setDeadline(t time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.deadline = t
	q.notify()
}

func (q *rxQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.notify()
}

// fail records why no more frames will come.
func (q *rxQueue) fail(err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.err = err
	q.notify()
}
