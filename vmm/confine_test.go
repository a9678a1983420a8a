package vmm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// filterProbe is a port device that notes whether the (stand-in) seccomp
// filter was in when the guest's write reached it.
type filterProbe struct {
	filterIn atomic.Bool
	writes   atomic.Int32
	early    atomic.Int32 // writes handled before the filter was in
}

func (p *filterProbe) Read(off uint64, data []byte) {}
func (p *filterProbe) Write(off uint64, data []byte) {
	p.writes.Add(1)
	if !p.filterIn.Load() {
		p.early.Add(1)
	}
}

// confineGuest writes to port 0x99 as its first instruction, then resets
// through the i8042.
var confineGuest = []byte{
	0xE6, 0x99, // out 0x99, al
	0xB0, 0xFE, // mov al, 0xfe
	0xE6, 0x64, // out 0x64, al: reset
	0xEB, 0xFE, // jmp $
}

// probedMachine is a 2-vCPU machine running confineGuest, asking for the
// seccomp filter, with the probe on port 0x99; it is closed when the test
// ends.
func probedMachine(t *testing.T) (*Machine, *filterProbe) {
	t.Helper()
	requireKVM(t)
	probe := &filterProbe{}
	m, err := New(Config{Kernel: writeGuest(t, confineGuest), MemoryBytes: 32 << 20, CPUs: 2, Seccomp: true,
		ExtraPIO: []PIODevice{{Name: "probe", Base: 0x99, Size: 1, Dev: probe}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, probe
}

func withInstaller(t *testing.T, install func() error) {
	t.Helper()
	old := installSeccomp
	installSeccomp = install
	t.Cleanup(func() { installSeccomp = old })
}

// TestRun_GuestStartsBeforeFilter_ExitsWaitForIt: the boot vCPU enters the
// guest while the filter goes in (the stand-in installer returns only once
// the first KVM_RUN has happened), and the guest's first exit, made at
// once, is handled only after it is in.
func TestRun_GuestStartsBeforeFilter_ExitsWaitForIt(t *testing.T) {
	m, probe := probedMachine(t)
	withInstaller(t, func() error {
		for deadline := time.Now().Add(10 * time.Second); m.FirstRunTime().IsZero(); {
			if time.Now().After(deadline) {
				return errors.New("the guest did not enter before the filter was in")
			}
			time.Sleep(time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond) // the guest's exit is made by now
		probe.filterIn.Store(true)
		return nil
	})
	out := m.Run(context.Background())
	if out.Reason != ReasonReset {
		t.Fatalf("outcome %v, want a reset", out)
	}
	if probe.writes.Load() != 1 || probe.early.Load() != 0 {
		t.Fatalf("probe: %d writes, %d of them before the filter was in; want 1 and 0", probe.writes.Load(), probe.early.Load())
	}
}

// TestRun_FilterFails_NoExitHandled: a filter that cannot be installed ends
// the run as a VMM error naming it, and the guest's exit is never handled.
func TestRun_FilterFails_NoExitHandled(t *testing.T) {
	m, probe := probedMachine(t)
	withInstaller(t, func() error {
		time.Sleep(20 * time.Millisecond)
		return errors.New("seccomp: install the filter: test refusal")
	})
	done := make(chan Outcome)
	go func() { done <- m.Run(context.Background()) }()
	select {
	case out := <-done:
		if out.Reason != ReasonVMMError || !strings.Contains(out.Detail, "test refusal") {
			t.Fatalf("outcome %v, want a VMM error naming the filter", out)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a failed filter did not end the run")
	}
	if n := probe.writes.Load(); n != 0 {
		t.Fatalf("the guest's exit was handled %d times without a filter", n)
	}
}

// TestRun_StoppedAtOnce_ClosesCleanly: a machine stopped before its vCPUs
// run returns from Run only once the queue goroutines are started, so
// Close, which stops them and resets the devices, never races their start
// (run it with -race).
func TestRun_StoppedAtOnce_ClosesCleanly(t *testing.T) {
	requireKVM(t)
	disk := filepath.Join(t.TempDir(), "disk")
	if err := os.WriteFile(disk, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		m, err := New(Config{Kernel: writeGuest(t, []byte{0xEB, 0xFE}), MemoryBytes: 32 << 20, CPUs: 1,
			Disks: []Disk{{Path: disk}}})
		if err != nil {
			t.Fatal(err)
		}
		m.Stop(ReasonTerminated, "test")
		if out := m.Run(context.Background()); out.Reason != ReasonTerminated {
			t.Fatalf("outcome %v", out)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
