package vmm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/boot"
)

func requireKVM(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/kvm"); err != nil {
		t.Skipf("SKIP: /dev/kvm not available (%v): machine tests need KVM", err)
	}
}

// writeGuest wraps 64-bit machine code (entered at its first byte) into a
// bzImage file.
func writeGuest(t *testing.T, code []byte) string {
	t.Helper()
	payload := make([]byte, 0x200, 0x200+len(code))
	payload = append(payload, code...)
	p := filepath.Join(t.TempDir(), "guest.bzImage")
	if err := os.WriteFile(p, boot.BuildBzImage(payload, boot.BzImageOptions{}), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestNew_FailingHalfBuilt_ReleasesEverything(t *testing.T) {
	requireKVM(t)
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt")
	os.WriteFile(corrupt, make([]byte, 8192), 0o644)
	good := writeGuest(t, []byte{0xEB, 0xFE})
	before := openFDs(t)
	for _, cfg := range []Config{
		{Kernel: corrupt, MemoryBytes: 64 << 20, CPUs: 1},                                     // fails loading the kernel
		{Kernel: good, Initrd: filepath.Join(dir, "missing"), MemoryBytes: 64 << 20, CPUs: 1}, // fails opening the initrd
		{Kernel: good, MemoryBytes: 64 << 20, CPUs: 1, ExtraPIO: []PIODevice{ // fails on a port clash, while KVM's half runs
			{Name: "clash", Base: 0x3F8, Size: 1, Dev: &recorder{}}}},
		{Kernel: good, MemoryBytes: 64 << 20, CPUs: 2, Disks: []Disk{{Path: filepath.Join(dir, "missing")}}}, // fails after the vCPUs exist
	} {
		m, err := New(cfg)
		if err == nil {
			m.Close()
			t.Fatalf("New(%+v) succeeded", cfg)
		}
		if got := openFDs(t); got != before {
			t.Fatalf("after failing with %v: %d fds open, want %d", err, got, before)
		}
	}
	if _, err := New(Config{Kernel: good, Initrd: filepath.Join(dir, "missing"), MemoryBytes: 64 << 20, CPUs: 1}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing initrd: %v, want ErrNotExist", err)
	}
}

// TestNew_WhileKVMSetup_RunsOnceBeforeNewReturns: the caller's hook runs
// once, on New's way, and not when New fails before reaching it (here
// loading the kernel).
func TestNew_WhileKVMSetup_RunsOnceBeforeNewReturns(t *testing.T) {
	requireKVM(t)
	calls := 0
	cfg := Config{Kernel: writeGuest(t, []byte{0xEB, 0xFE}), MemoryBytes: 32 << 20, CPUs: 2, WhileKVMSetup: func() { calls++ }}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	if calls != 1 {
		t.Fatalf("WhileKVMSetup ran %d times, want 1", calls)
	}
	cfg.Kernel = filepath.Join(t.TempDir(), "missing")
	if _, err := New(cfg); err == nil {
		t.Fatal("New with a missing kernel succeeded")
	}
	if calls != 1 {
		t.Fatalf("WhileKVMSetup ran for a New that failed loading the kernel (%d calls)", calls)
	}
}

func TestRun_StopEndsASpinningGuest(t *testing.T) {
	requireKVM(t)
	m, err := New(Config{Kernel: writeGuest(t, []byte{0xEB, 0xFE}), MemoryBytes: 32 << 20, CPUs: 2}) // jmp $
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	done := make(chan Outcome)
	go func() { done <- m.Run(context.Background()) }()
	time.Sleep(50 * time.Millisecond)
	m.Stop(ReasonTerminated, "test")
	select {
	case out := <-done:
		if out.Reason != ReasonTerminated || out.Reason.Status() != StatusTerminated {
			t.Fatalf("outcome %v", out)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not end the run")
	}
	if m.FirstRunTime().IsZero() {
		t.Error("first KVM_RUN time not recorded")
	}
}

func TestRun_ContextCancelStops(t *testing.T) {
	requireKVM(t)
	m, err := New(Config{Kernel: writeGuest(t, []byte{0xEB, 0xFE}), MemoryBytes: 32 << 20, CPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if out := m.Run(ctx); out.Reason != ReasonInterrupted {
		t.Fatalf("outcome %v", out)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{"512M": 512 << 20, "1G": 1 << 30, "1.5G": 3 << 29, "4096": 4096, "64mib": 64 << 20, "2T": 2 << 40} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "lots", "-1G", "NaN", "1e30G"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
	if FormatSize(512<<20) != "512M" || FormatSize(5<<30) != "5G" || FormatSize(1000) != "1000" {
		t.Error("FormatSize")
	}
}

func TestConfig_Validate(t *testing.T) {
	for _, c := range []Config{
		{MemoryBytes: 64 << 20, CPUs: 1},
		{Kernel: "k", MemoryBytes: 1 << 20, CPUs: 1},
		{Kernel: "k", MemoryBytes: 64 << 20, CPUs: 0},
		{Kernel: "k", MemoryBytes: 64 << 20, CPUs: 1000},
	} {
		if err := c.validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v, want ErrConfig", c, err)
		}
	}
}
