package devices

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

func TestSerial_Output_BufferedUntilNewline(t *testing.T) {
	s, _, out := newTestSerial(t)
	for _, c := range []byte("ab") {
		wr(s, regTHR, c)
	}
	if out.Len() != 0 {
		t.Fatalf("out = %q before newline, want nothing yet", out.String())
	}
	wr(s, regTHR, '\n')
	if got := out.String(); got != "ab\n" {
		t.Fatalf("out = %q, want %q", got, "ab\n")
	}
}

func TestSerial_IERWrite_FlushesOutput(t *testing.T) {
	s, _, out := newTestSerial(t)
	wr(s, regTHR, '$')
	wr(s, regIER, 0)
	if got := out.String(); got != "$" {
		t.Fatalf("out = %q, want %q", got, "$")
	}
}

func TestSerial_FullBuffer_Flushes(t *testing.T) {
	s, _, out := newTestSerial(t)
	for range txBufSize {
		wr(s, regTHR, 'x')
	}
	if out.Len() != txBufSize {
		t.Fatalf("out has %d bytes, want %d", out.Len(), txBufSize)
	}
}

func TestSerial_FlushDelay_FlushesWhenTimerFires(t *testing.T) {
	var fire func()
	var delay time.Duration
	after := func(d time.Duration, f func()) func() bool {
		delay, fire = d, f
		return func() bool { return true }
	}
	out := &bytes.Buffer{}
	s := NewSerial(&fakeIRQ{}, out, WithFlushDelay(5*time.Millisecond, after))
	wr(s, regTHR, '>')
	wr(s, regTHR, ' ')
	if fire == nil || delay != 5*time.Millisecond || out.Len() != 0 {
		t.Fatalf("timer not armed with 5ms (delay %v) or output early %q", delay, out.String())
	}
	fire()
	if got := out.String(); got != "> " {
		t.Fatalf("out = %q, want %q", got, "> ")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestSerial_WriteError_CountedNotFatal(t *testing.T) {
	s := NewSerial(&fakeIRQ{}, failWriter{})
	wr(s, regTHR, 'a')
	wr(s, regTHR, '\n')
	wr(s, regTHR, 'b')
	if err := s.Flush(); err == nil {
		t.Fatal("Flush error = nil, want the write error")
	}
	st := s.Stats()
	if st.WriteErrors != 2 || st.TXBytes != 3 {
		t.Fatalf("stats = %+v, want 2 write errors and 3 bytes", st)
	}
}

func TestSerial_QueueInput_BoundedAndResumes(t *testing.T) {
	s, _, _ := newTestSerial(t)
	if n := s.QueueInput(make([]byte, rxCap+10)); n != rxCap {
		t.Fatalf("QueueInput accepted %d, want %d", n, rxCap)
	}
	if n := s.QueueInput([]byte("x")); n != 0 {
		t.Fatalf("QueueInput on a full queue accepted %d, want 0", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := s.WaitRoom(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitRoom on a full queue = %v, want deadline exceeded", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.WaitRoom(context.Background()) }()
	rd(s, regRBR)
	if err := <-done; err != nil {
		t.Fatalf("WaitRoom after a read = %v", err)
	}
	if n := s.QueueInput([]byte("xy")); n != 1 {
		t.Fatalf("QueueInput after one read accepted %d, want 1", n)
	}
}

// The guest polls LSR and pops RBR on one goroutine while the host feeds
// more than the queue holds on another: every byte arrives, in order.
func TestSerial_ConcurrentFeedAndRead_NoLoss(t *testing.T) {
	s, _, _ := newTestSerial(t)
	in := make([]byte, 3*rxCap)
	for i := range in {
		in[i] = byte(i * 7)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.FeedInput(context.Background(), in) }()
	got := make([]byte, 0, len(in))
	for len(got) < len(in) {
		if rd(s, regLSR)&lsrDR != 0 {
			got = append(got, rd(s, regRBR))
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, in) {
		t.Fatal("guest read differs from host input")
	}
}

func TestSerial_ConcurrentVCPUs_OutputComplete(t *testing.T) {
	s, _, out := newTestSerial(t)
	const perCPU = 500
	done := make(chan struct{})
	for range 2 {
		go func() {
			for range perCPU {
				wr(s, regTHR, 'c')
				rd(s, regLSR)
			}
			done <- struct{}{}
		}()
	}
	<-done
	<-done
	if err := s.Flush(); err != nil || out.Len() != 2*perCPU {
		t.Fatalf("out has %d bytes (err %v), want %d", out.Len(), err, 2*perCPU)
	}
}

func TestSerial_NewlineFlush_DisarmsTimer(t *testing.T) {
	stopped := 0
	after := func(time.Duration, func()) func() bool {
		return func() bool { stopped++; return true }
	}
	s := NewSerial(&fakeIRQ{}, &bytes.Buffer{}, WithFlushDelay(time.Millisecond, after))
	wr(s, regTHR, 'a')
	wr(s, regTHR, '\n')
	if stopped != 1 {
		t.Fatalf("timer stopped %d times, want 1", stopped)
	}
}

// A polling guest checks LSR.THRE once per byte; spinning on LSR.DR means it
// waits for input, so a prompt without a newline must reach the user.
func TestSerial_LSRPolling_FlushesPrompt(t *testing.T) {
	s, _, out := newTestSerial(t)
	for _, c := range []byte("> ") {
		rd(s, regLSR)
		wr(s, regTHR, c)
	}
	rd(s, regLSR)
	if out.Len() != 0 {
		t.Fatalf("out = %q after one LSR read, want still buffered", out.String())
	}
	rd(s, regLSR)
	if got := out.String(); got != "> " {
		t.Fatalf("out = %q, want %q", got, "> ")
	}
}
