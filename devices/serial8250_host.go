package devices

import (
	"context"
	"time"
)

// This file is the host side of the UART: input from the host terminal and
// output to the host writer.

// AfterFunc runs f once, d from now, on another goroutine, and returns a
// function that cancels it (reporting whether it did). In production it is
// a wrapper over time.AfterFunc; tests pass a fake clock. It is called with
// the Serial's lock held, so it must not run f before returning.
type AfterFunc func(d time.Duration, f func()) (stop func() bool)

// SerialOption configures a Serial.
type SerialOption func(*Serial)

// WithFlushDelay makes buffered output reach the writer no later than d
// after the guest transmitted it, even from a guest that never writes a
// newline or touches IER. after schedules the flush.
func WithFlushDelay(d time.Duration, after AfterFunc) SerialOption {
	return func(s *Serial) {
		s.flushDelay = d
		s.afterFunc = after
	}
}

// QueueInput offers host input to the guest and returns how many leading
// bytes of p were accepted; the rest did not fit the bounded receive queue
// and should be offered again after WaitRoom. It may raise the IRQ.
func (s *Serial) QueueInput(p []byte) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.pushRX(p)
	s.updateIRQ()
	return n
}

// WaitRoom blocks until the receive queue has room for at least one byte,
// or ctx ends. Any number of goroutines may wait.
func (s *Serial) WaitRoom(ctx context.Context) error {
	for {
		s.mu.Lock()
		if s.rxLen < rxCap {
			s.mu.Unlock()
			return nil
		}
		if s.roomWait == nil {
			s.roomWait = make(chan struct{})
		}
		ch := s.roomWait
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// FeedInput queues all of p, waiting for room as the guest reads, so no
// input is lost and memory stays bounded. It returns early only when ctx
// ends.
func (s *Serial) FeedInput(ctx context.Context, p []byte) error {
	for len(p) > 0 {
		p = p[s.QueueInput(p):]
		if len(p) == 0 {
			return nil
		}
		if err := s.WaitRoom(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Flush writes buffered guest output to the writer now. Output is buffered
// so that a guest printing byte by byte is not one syscall per byte, and it
// is flushed:
//   - when the guest transmits a newline,
//   - when the guest writes IER, which Linux does at the end of each console
//     write and when its transmit queue drains,
//   - when the guest reads LSR twice in a row: a polling writer reads it once
//     per byte before THR, so a second read means it is spinning for input,
//   - when the buffer holds 4 KiB,
//   - after the WithFlushDelay delay, if configured,
//   - when Flush is called: the VMM calls it after the vCPUs have stopped,
//     so a guest's last bytes are written before the VM ends.
//
// A failed write is counted in Stats and its bytes are dropped; the error is
// returned here too.
func (s *Serial) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flush()
}

// Stats returns the counters.
func (s *Serial) Stats() SerialStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// emit buffers one transmitted byte for the host.
func (s *Serial) emit(v byte) {
	s.tx = append(s.tx, v)
	s.stats.TXBytes++
	if v == '\n' || len(s.tx) >= txBufSize {
		s.flush()
		return
	}
	if s.stopFlush == nil && s.afterFunc != nil && s.flushDelay > 0 {
		s.stopFlush = s.afterFunc(s.flushDelay, s.delayedFlush)
	}
}

func (s *Serial) delayedFlush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopFlush = nil
	s.flush()
}

// flush writes s.tx to out under mu, so output keeps the order the guest
// transmitted it in. Holding mu across a write that blocks (a full pipe)
// stalls the guest's next UART access: that is the back-pressure.
func (s *Serial) flush() error {
	if s.stopFlush != nil {
		s.stopFlush()
		s.stopFlush = nil
	}
	if len(s.tx) == 0 {
		return nil
	}
	_, err := s.out.Write(s.tx)
	s.tx = s.tx[:0]
	if err != nil {
		s.stats.WriteErrors++
	}
	return err
}

// pushRX appends as much of p as fits and returns how much did.
func (s *Serial) pushRX(p []byte) int {
	n := min(len(p), rxCap-s.rxLen)
	for _, v := range p[:n] {
		s.rx[(s.rxHead+s.rxLen)%rxCap] = v
		s.rxLen++
	}
	return n
}

// popRX implements an RBR read; an empty receiver reads 0.
func (s *Serial) popRX() byte {
	if s.rxLen == 0 {
		return 0
	}
	v := s.rx[s.rxHead]
	s.rxHead = (s.rxHead + 1) % rxCap
	s.rxLen--
	s.stats.RXBytes++
	s.wakeRoom()
	return v
}

// clearRX empties the receive FIFO (FCR1, or FCR0 changing). Bytes beyond
// the FIFO are host backlog still on the wire, and they stay queued: the
// guest clears FIFOs whenever it opens the port, and typed-ahead input
// should not vanish by the kilobyte.
func (s *Serial) clearRX() {
	n := min(s.rxLen, fifoDepth)
	s.rxHead = (s.rxHead + n) % rxCap
	s.rxLen -= n
	if n > 0 {
		s.wakeRoom()
	}
}

func (s *Serial) wakeRoom() {
	if s.roomWait != nil {
		close(s.roomWait)
		s.roomWait = nil
	}
}
