package blk_test

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/virtio"
	"github.com/vmm-dev/vmm/virtio/blk"
	"github.com/vmm-dev/vmm/virtio/virtiotest"
)

const (
	testMemSize   = 4 << 20
	testQueueSize = 16
)

// irqRecorder is a virtio.Interrupt that counts signals, which come from
// the device's workers, and wakes whoever waits on signalled.
type irqRecorder struct {
	signals   atomic.Int32
	signalled chan struct{} // holds a token after a signal
}

func newIRQRecorder() *irqRecorder {
	return &irqRecorder{signalled: make(chan struct{}, 1)}
}

func (r *irqRecorder) Signal(q int) error {
	r.signals.Add(1)
	select {
	case r.signalled <- struct{}{}:
	default: // a token is waiting already
	}
	return nil
}

// count is the number of signals so far.
func (r *irqRecorder) count() int { return int(r.signals.Load()) }

// memDisk is an in-memory Backend whose failures a test chooses. Bytes past
// data read as zero and writes there are dropped, so sectors may claim
// more than data holds. Its lock makes it safe for the device's workers;
// tests touch its fields only while the device is idle.
type memDisk struct {
	mu       sync.Mutex
	data     []byte
	sectors  uint64
	readOnly bool
	id       [blk.IDBytes]byte

	readErr, writeErr, flushErr error
	flushes                     int
}

func newMemDisk(sectors int) *memDisk {
	return &memDisk{data: make([]byte, sectors*blk.SectorSize), sectors: uint64(sectors)}
}

func (m *memDisk) ReadAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.readErr != nil {
		return 0, m.readErr
	}
	clear(p)
	if off < int64(len(m.data)) {
		copy(p, m.data[off:])
	}
	return len(p), nil
}

func (m *memDisk) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.writeErr != nil {
		return 0, m.writeErr
	}
	if off < int64(len(m.data)) {
		copy(m.data[off:], p)
	}
	return len(p), nil
}

func (m *memDisk) Flush() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.flushes++
	return m.flushErr
}

func (m *memDisk) Sectors() uint64       { return m.sectors }
func (m *memDisk) ID() [blk.IDBytes]byte { return m.id }
func (m *memDisk) ReadOnly() bool        { return m.readOnly }

// rig is a block device activated on a fake driver's queue.
type rig struct {
	t        testing.TB
	dev      *blk.Device
	drv      *virtiotest.Driver
	irq      *irqRecorder
	features uint64
}

// newRig activates a device over backend with the given negotiated
// features (VIRTIO_BLK_F_FLUSH among them unless a test leaves it out)
// on a queue of testQueueSize entries.
func newRig(t testing.TB, backend blk.Backend, opts blk.Options, features uint64) *rig {
	t.Helper()
	return newRigSize(t, backend, opts, features, testQueueSize)
}

// newRigSize is newRig with a queue of size entries, for tests that keep
// more requests in flight than testQueueSize descriptors hold.
func newRigSize(t testing.TB, backend blk.Backend, opts blk.Options, features uint64, size uint16) *rig {
	t.Helper()
	dev, err := blk.New(backend, opts)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, dev: dev, features: features}
	r.activate(size)
	return r
}

// activate gives the device a fresh guest memory, driver and queue of
// size entries, as a driver does after a reset.
func (r *rig) activate(size uint16) {
	r.t.Helper()
	mem := guestmem.NewTest(testMemSize)
	r.drv = virtiotest.New(r.t, mem, size)
	q, err := virtio.NewQueue(r.dev.QueueMaxSizes()[0])
	if err != nil {
		r.t.Fatal(err)
	}
	if err := q.Enable(mem, r.drv.Config(r.features)); err != nil {
		r.t.Fatal(err)
	}
	r.irq = newIRQRecorder()
	if err := r.dev.Activate(mem, r.features, []*virtio.Queue{q}, r.irq); err != nil {
		r.t.Fatal(err)
	}
}

// header is the 16-byte request header.
func header(typ uint32, sector uint64) []byte {
	b := binary.LittleEndian.AppendUint32(nil, typ)
	b = binary.LittleEndian.AppendUint32(b, 0)
	return binary.LittleEndian.AppendUint64(b, sector)
}

// submit publishes a well-framed request: the header and out (if any)
// readable, then in writable bytes (if any) and the status byte.
func (r *rig) submit(typ uint32, sector uint64, out []byte, in int) uint16 {
	r.t.Helper()
	readable := [][]byte{header(typ, sector)}
	if len(out) > 0 {
		readable = append(readable, out)
	}
	var writable []int
	if in > 0 {
		writable = append(writable, in)
	}
	return r.drv.AddChain(readable, append(writable, 1))
}

// notify runs Notify, which must succeed, and waits for every request
// it started to complete.
func (r *rig) notify() {
	r.t.Helper()
	if err := r.dev.Notify(0); err != nil {
		r.t.Fatalf("Notify: %v", err)
	}
	r.dev.WaitIdle()
}

// used returns the used ring entries since the last call, which must
// number n.
func (r *rig) used(n int) []virtiotest.UsedElem {
	r.t.Helper()
	u := r.drv.Used()
	if len(u) != n {
		r.t.Fatalf("%d used entries, want %d: %+v", len(u), n, u)
	}
	return u
}

// result splits what the device wrote into head's writable bytes into the
// data and the final status byte.
func (r *rig) result(head uint16) ([]byte, byte) {
	r.t.Helper()
	w := r.drv.Written(head)
	if len(w) == 0 {
		r.t.Fatal("chain has no writable bytes")
	}
	return w[:len(w)-1], w[len(w)-1]
}

// run submits one request, notifies, and returns its data, status and
// used length.
func (r *rig) run(typ uint32, sector uint64, out []byte, in int) ([]byte, byte, uint32) {
	r.t.Helper()
	head := r.submit(typ, sector, out, in)
	r.notify()
	u := r.used(1)[0]
	if u.ID != uint32(head) {
		r.t.Fatalf("used id %d, want head %d", u.ID, head)
	}
	data, status := r.result(head)
	return data, status, u.Len
}

// pattern is n bytes that differ from sector to sector.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i) + byte(i/blk.SectorSize)*7
	}
	return b
}

// tempDisk writes content to a fresh file and returns its path.
func tempDisk(t testing.TB, content []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// openDisk opens path as a file backend closed at the end of the test.
func openDisk(t testing.TB, path string, readOnly bool) *blk.File {
	t.Helper()
	f, err := blk.NewFileBackend(path, readOnly)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// readFile returns the file's contents.
func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
