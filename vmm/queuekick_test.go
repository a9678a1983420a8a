package vmm

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// waitReturns runs k.wait on a goroutine and reports what it returned, or
// fails the test if it is still waiting after d.
func waitReturns(t *testing.T, k *queueKick, d time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- k.wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("wait still blocked after %v", d)
		return nil
	}
}

func newTestKick(t *testing.T) *queueKick {
	t.Helper()
	k, err := newQueueKick()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.close() })
	return k
}

func TestQueueKick_SignalWakesWait(t *testing.T) {
	k := newTestKick(t)
	done := make(chan error, 1)
	go func() { done <- k.wait() }()
	time.Sleep(10 * time.Millisecond) // let it park
	k.signal()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("wait = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("signal did not wake wait")
	}
}

func TestQueueKick_SignalsBeforeWaitCountAsOne(t *testing.T) {
	k := newTestKick(t)
	for range 3 {
		k.signal()
	}
	if err := waitReturns(t, k, 5*time.Second); err != nil {
		t.Fatalf("wait = %v", err)
	}
	// The counter was cleared: a second wait blocks until the next signal.
	done := make(chan error, 1)
	go func() { done <- k.wait() }()
	select {
	case <-done:
		t.Fatal("second wait returned without a signal")
	case <-time.After(50 * time.Millisecond):
	}
	k.signal()
	if err := <-done; err != nil {
		t.Fatalf("wait = %v", err)
	}
}

func TestQueueKick_CloseEndsWait(t *testing.T) {
	k, err := newQueueKick()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- k.wait() }()
	time.Sleep(10 * time.Millisecond)
	k.close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("wait on a closed kick returned nil")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("close did not end wait")
	}
}

// The reason for the poller: goroutines waiting for notifications hold no
// OS thread each (and no P in a system call). With blocking reads every
// waiter would end up on a thread of its own.
func TestQueueKick_WaitersHoldNoThreads(t *testing.T) {
	const waiters = 64
	before := threadCount(t)
	kicks := make([]*queueKick, waiters)
	var wg sync.WaitGroup
	for i := range kicks {
		kicks[i] = newTestKick(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			kicks[i].wait()
		}()
	}
	// Long enough for sysmon to have handed the Ps of threads blocked in
	// read(2) to new threads, many times over.
	time.Sleep(200 * time.Millisecond)
	after := threadCount(t)
	for _, k := range kicks {
		k.signal()
	}
	wg.Wait()
	if after-before >= waiters/2 {
		t.Errorf("%d goroutines waiting added %d threads (%d -> %d); want them parked in the poller", waiters, after-before, before, after)
	}
}

// threadCount is this process's thread count from /proc/self/status.
func threadCount(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		if v, ok := bytes.CutPrefix(s.Bytes(), []byte("Threads:")); ok {
			n, err := strconv.Atoi(string(bytes.TrimSpace(v)))
			if err != nil {
				t.Fatalf("Threads: %q", v)
			}
			return n
		}
	}
	t.Fatal("no Threads line in /proc/self/status")
	return 0
}
