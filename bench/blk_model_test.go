package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/vmm-dev/vmm/virtio/blk"
)

// TestBlkModel_RunsEveryPattern runs each pattern of the suite briefly on
// the device and on the host: the driver must see every request complete
// with status OK, and both sides must take some time.
func TestBlkModel_RunsEveryPattern(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := writePatternFile(path, blkModelFile); err != nil {
		t.Fatal(err)
	}
	for _, p := range blkModelPatterns() {
		p.n = 3 * p.depth // wraps the slots
		dev, err := runBlkModel(path, p)
		if err != nil || dev <= 0 {
			t.Errorf("%s: device %v, %v", p.metric(), dev, err)
		}
		host, err := runBlkHost(path, p, false)
		if err != nil || host <= 0 {
			t.Errorf("%s: host %v, %v", p.metric(), host, err)
		}
	}
}

// TestBlkHostMapped_MovesTheData: the host's mapping loop (runBlkHost,
// mapped) writes the file's bytes where its pwrite loop would, and no
// others.
func TestBlkHostMapped_MovesTheData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := writePatternFile(path, blkModelFile); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if took, err := runBlkHost(path, blkPattern{typ: blk.TypeIn, size: 4 << 10, depth: 1, n: 3}, true); err != nil || took <= 0 {
		t.Fatalf("reads: %v, %v", took, err)
	}
	if _, err := runBlkHost(path, blkPattern{typ: blk.TypeOut, size: 4 << 10, depth: 1, n: 2}, true); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 8 << 10 {
		if got[i] != byte(i%(4<<10))+1 {
			t.Fatalf("byte %d is %#x after the mapped writes, want %#x", i, got[i], byte(i%(4<<10))+1)
		}
	}
	if !bytes.Equal(got[8<<10:], want[8<<10:]) {
		t.Error("the mapped writes reached past the two requests' bytes")
	}
}

// TestBlkModel_WritesLand: what the fake driver writes reaches the file at
// the sectors it named.
func TestBlkModel_WritesLand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := writePatternFile(path, blkModelFile); err != nil {
		t.Fatal(err)
	}
	p := blkPattern{typ: blk.TypeOut, size: 4 << 10, depth: 16, n: 40}
	if _, err := runBlkModel(path, p); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range p.n * p.size {
		if b[i] != byte(i%p.size)+1 {
			t.Fatalf("byte %d is %#x after the writes, want %#x", i, b[i], byte(i%p.size)+1)
		}
	}
	// Past them, writePatternFile's bytes (the first MiB's).
	if x := p.n * p.size; b[x] != byte(x)+byte(x>>9)*7+1 {
		t.Errorf("byte %d, past the %d requests, changed to %#x", x, p.n, b[x])
	}
}

// BenchmarkBlkModel runs the suite's patterns on the device alone, for
// profiling: go test -bench BlkModel -cpuprofile.
func BenchmarkBlkModel(b *testing.B) {
	path := filepath.Join(b.TempDir(), "disk.img")
	if err := writePatternFile(path, blkModelFile); err != nil {
		b.Fatal(err)
	}
	for _, p := range blkModelPatterns() {
		b.Run(fmt.Sprintf("%s/%dKiB/depth=%d", p.op(), p.size>>10, p.depth), func(b *testing.B) {
			p.n = b.N
			benchDriver(b, func() (*blkDriver, error) { return newBlkDriver(b, path, p) })
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}

// BenchmarkBlkModelFixedCost is BenchmarkBlkModel's one-outstanding
// patterns on a backend that moves no data and makes no system call: what
// is left is the device's and the driver's fixed cost per request (pop,
// parse, status, used ring, notification check; the driver's header,
// publish, kick and reap), the part of the model the host's pread does not
// pay.
func BenchmarkBlkModelFixedCost(b *testing.B) {
	for _, p := range blkModelPatterns() {
		if p.depth != 1 {
			continue
		}
		b.Run(fmt.Sprintf("%s/%dKiB", p.op(), p.size>>10), func(b *testing.B) {
			p.n = b.N
			benchDriver(b, func() (*blkDriver, error) { return newBlkDriverOn(b, nullDisk{}, func() error { return nil }, p) })
		})
	}
}

// benchDriver makes a driver and times its run of b.N requests, set-up
// excluded.
func benchDriver(b *testing.B, newDriver func() (*blkDriver, error)) {
	d, err := newDriver()
	if err != nil {
		b.Fatal(err)
	}
	defer d.close()
	b.ReportAllocs()
	b.ResetTimer()
	if _, err := d.run(); err != nil {
		b.Fatal(err)
	}
}

// nullDisk is a blk.Backend, Vectored and NonBlocking, whose every
// transfer succeeds at once without touching the buffers.
type nullDisk struct{}

func (nullDisk) ReadAt(p []byte, off int64) (int, error)        { return len(p), nil }
func (nullDisk) WriteAt(p []byte, off int64) (int, error)       { return len(p), nil }
func (nullDisk) ReadvAt(bufs [][]byte, off int64) (int, error)  { return total(bufs), nil }
func (nullDisk) WritevAt(bufs [][]byte, off int64) (int, error) { return total(bufs), nil }
func (nullDisk) TryReadvAt(bufs [][]byte, off int64) bool       { return true }
func (nullDisk) TryWritevAt(bufs [][]byte, off int64) bool      { return true }
func (nullDisk) CanTry(write bool) bool                         { return true }
func (nullDisk) Flush() error                                   { return nil }
func (nullDisk) Sectors() uint64                                { return blkModelFile / blk.SectorSize }
func (nullDisk) ID() [blk.IDBytes]byte                          { return [blk.IDBytes]byte{} }
func (nullDisk) ReadOnly() bool                                 { return false }

var _ blk.NonBlocking = nullDisk{}

func total(bufs [][]byte) int {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	return n
}
