package vmtest

import (
	"regexp"
	"sync"
	"time"
)

// stream collects one output of the VM (console or stderr) and wakes anyone
// waiting for new bytes. It is an io.Writer for exec.Cmd.
type stream struct {
	mu      sync.Mutex
	buf     []byte
	changed chan struct{} // closed and replaced on every write and on close
	closed  bool          // the writer is done: no more bytes will come
}

func newStream() *stream {
	return &stream{changed: make(chan struct{})}
}

func (s *stream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf, p...)
	s.wakeLocked()
	return len(p), nil
}

// close marks the end of the stream, so waiters stop waiting for more.
func (s *stream) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.wakeLocked()
}

func (s *stream) wakeLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *stream) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.buf)
}

// tail returns at most the last n bytes, marked when cut.
func (s *stream) tail(n int) string {
	return tail(s.String(), n)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// matchResult says how a wait for a pattern ended.
type matchResult int

const (
	matched  matchResult = iota
	timedOut             // the deadline passed first
	ended                // the stream closed without a match
)

// waitMatch waits until re matches the bytes from offset from on, the stream
// closes, or timeout passes. On a match it returns the submatches and the
// offset just past the match, where the next search should start.
func (s *stream) waitMatch(re *regexp.Regexp, from int, timeout time.Duration) ([]string, int, matchResult) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		if loc := re.FindSubmatchIndex(s.buf[from:]); loc != nil {
			subs := submatches(s.buf[from:], loc)
			s.mu.Unlock()
			return subs, from + loc[1], matched
		}
		closed, changed := s.closed, s.changed
		s.mu.Unlock()
		if closed {
			return nil, from, ended
		}
		select {
		case <-changed:
		case <-timer.C:
			return nil, from, timedOut
		}
	}
}

func submatches(b []byte, loc []int) []string {
	subs := make([]string, len(loc)/2)
	for i := range subs {
		if loc[2*i] >= 0 {
			subs[i] = string(b[loc[2*i]:loc[2*i+1]])
		}
	}
	return subs
}
