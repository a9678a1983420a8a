// Package startuptrace records when each phase of a VMM's start-up ended,
// on CLOCK_MONOTONIC, so that a benchmark which noted the same clock before
// exec can tell where start-up time goes. It is off unless VMM_TRACE_STARTUP
// is set, and then costs one clock read per mark.
package startuptrace

import (
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Env turns tracing on.
const Env = "VMM_TRACE_STARTUP"

var (
	enabled = os.Getenv(Env) != ""
	mu      sync.Mutex
	marks   []mark
)

type mark struct {
	name string
	ns   int64
}

// Mark records that the phase called name has just ended.
func Mark(name string) {
	if !enabled {
		return
	}
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) != nil {
		return
	}
	mu.Lock()
	marks = append(marks, mark{name, ts.Nano()})
	mu.Unlock()
}

// Print writes one line per mark: "vmm: startup phase NAME at CLOCK_MONOTONIC N ns".
func Print(w io.Writer) {
	mu.Lock()
	defer mu.Unlock()
	for _, m := range marks {
		fmt.Fprintf(w, "vmm: startup phase %s at CLOCK_MONOTONIC %d ns\n", m.name, m.ns)
	}
}
