package doctor

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vmm-dev/vmm/boot"
	"github.com/vmm-dev/vmm/vmm"
)

// probePort is where the speed-probe guest marks the start and end of its
// loop; the doctor's machine places a timing device there.
const probePort = 0x5F0

// probeEntry is where the 64-bit entry lies in a bzImage payload.
const probeEntry = 0x200

// probePayload is the speed-probe guest in machine code: mark, count ECX
// down from n (two instructions an iteration), mark, reset via the i8042.
//
//	mov dx, 0x5f0 ; out dx, al ; mov ecx, n
//	1: dec ecx ; jnz 1b
//	out dx, al ; mov al, 0xfe ; out 0x64, al
//	2: hlt ; jmp 2b
func probePayload(n uint32) []byte {
	code := []byte{
		0x66, 0xBA, probePort & 0xFF, probePort >> 8, // mov dx, probePort
		0xEE,             // out dx, al
		0xB9, 0, 0, 0, 0, // mov ecx, n
		0xFF, 0xC9, // dec ecx
		0x75, 0xFC, // jnz -4
		0xEE,       // out dx, al
		0xB0, 0xFE, // mov al, 0xfe
		0xE6, 0x64, // out 0x64, al
		0xF4,       // hlt
		0xEB, 0xFD, // jmp -3
	}
	binary.LittleEndian.PutUint32(code[6:], n)
	p := make([]byte, probeEntry+len(code))
	for i := 0; i < probeEntry; i++ {
		p[i] = 0xF4 // hlt: nothing should enter here
	}
	copy(p[probeEntry:], code)
	return p
}

// stopwatch is a port device: the first write starts it, the second stops it.
type stopwatch struct {
	mu          sync.Mutex
	start, stop time.Time
	marks       int
}

func (s *stopwatch) Read(offset uint64, data []byte) {}

func (s *stopwatch) Write(offset uint64, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.marks {
	case 0:
		s.start = time.Now()
	case 1:
		s.stop = time.Now()
	}
	s.marks++
}

// runProbe boots the probe guest with an n-iteration loop and returns how
// long the loop took.
func runProbe(dir string, n uint32) (time.Duration, error) {
	kernel := filepath.Join(dir, fmt.Sprintf("probe-%d.bzImage", n))
	if err := os.WriteFile(kernel, boot.BuildBzImage(probePayload(n), boot.BzImageOptions{}), 0o644); err != nil {
		return 0, err
	}
	sw := &stopwatch{}
	m, err := vmm.New(vmm.Config{
		Kernel: kernel, MemoryBytes: 32 << 20, CPUs: 1,
		ExtraPIO: []vmm.PIODevice{{Name: "probe", Base: probePort, Size: 1, Dev: sw}},
	})
	if err != nil {
		return 0, err
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := m.Run(ctx)
	if out.Reason != vmm.ReasonReset {
		return 0, fmt.Errorf("probe guest ended with %s", out)
	}
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.marks < 2 {
		return 0, fmt.Errorf("probe guest reset after %d of 2 marks", sw.marks)
	}
	return sw.stop.Sub(sw.start), nil
}

// ProbeGuestSpeed measures guest instructions per second with a short
// integer loop, lengthened until it runs long enough to time.
func ProbeGuestSpeed() (float64, error) {
	dir, err := os.MkdirTemp("", "vmm-doctor-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	n := uint32(100_000)
	for {
		d, err := runProbe(dir, n)
		if err != nil {
			return 0, err
		}
		if d >= 20*time.Millisecond || n >= 1<<30 {
			return 2 * float64(n) / d.Seconds(), nil
		}
		n *= 16
	}
}
