package virtiotest

import (
	"testing"
	"time"
)

// Timeout bounds how long a device test waits for something that must
// happen: a failure, never a timing assertion.
const Timeout = 10 * time.Second

// MustReturn runs f on a goroutine and fails the test if it has not
// returned within Timeout: for Reset and Close, which wait for a device's
// own goroutines and must not hang on them.
func MustReturn(tb testing.TB, what string, f func()) {
	tb.Helper()
	done := make(chan struct{})
	go func() {
		f()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(Timeout):
		tb.Fatalf("%s did not return", what)
	}
}

// WaitFor polls cond until it holds, failing the test after Timeout.
func WaitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Microsecond)
	}
}
