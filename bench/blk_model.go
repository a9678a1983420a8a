package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/virtio"
	"github.com/vmm-dev/vmm/virtio/blk"
	"github.com/vmm-dev/vmm/virtio/virtiotest"
)

// The virtio-blk-model suite: blk.Device alone, with no VM and no exits. A
// fake driver (virtiotest lays the queue out in guest memory mapped as
// vmm maps it) makes sequential requests on a file backend and takes
// completions as a guest would (see blkDriver.run), one at a time (as
// benchblk does) and 16 at a time; the peer is the host itself making the
// same transfers with pread/pwrite, one at a time, on the same file in the
// page cache. The gap is what the device adds: the ring, the parsing, the
// worker hand-off and the interrupt; with 16 outstanding the device may
// also merge adjacent requests into one preadv/pwritev, as QEMU's does.

func init() { register(suite{name: "virtio-blk-model", run: blkModelSuite}) }

const (
	blkModelFile   = 64 << 20
	blkModelMem    = 8 << 20 // guest memory: rings and up to 16 × 64 KiB buffers
	blkModelQueue  = 64      // three descriptors per request, 16 requests
	blkModelTarget = 0.9     // of the host's rate
	guestPage      = 4096
	// modelTimeout bounds one run of a device model: a lost completion
	// fails the suite instead of hanging it.
	modelTimeout = 30 * time.Second
)

// blkPattern is one measured access pattern.
type blkPattern struct {
	typ   uint32 // blk.TypeIn or blk.TypeOut
	size  int
	depth int // requests the driver keeps outstanding
	n     int // requests per run
}

func (p blkPattern) op() string {
	if p.typ == blk.TypeIn {
		return "read"
	}
	return "write"
}

func (p blkPattern) metric() string {
	return fmt.Sprintf("blk.Device %ss, %d KiB sequential, %d outstanding", p.op(), p.size>>10, p.depth)
}

func (p blkPattern) unit() string {
	if p.size < 64<<10 {
		return "req/s"
	}
	return "MB/s"
}

// value is the figure the pattern reports for n requests in d.
func (p blkPattern) value(d time.Duration) float64 {
	if p.unit() == "req/s" {
		return float64(p.n) / d.Seconds()
	}
	return float64(p.n*p.size) / 1e6 / d.Seconds()
}

func blkModelPatterns() []blkPattern {
	var ps []blkPattern
	for _, typ := range []uint32{blk.TypeIn, blk.TypeOut} {
		for _, depth := range []int{1, 16} {
			ps = append(ps, blkPattern{typ: typ, size: 4 << 10, depth: depth, n: 20000},
				blkPattern{typ: typ, size: 64 << 10, depth: depth, n: 5000})
		}
	}
	return ps
}

func blkModelSuite(e *Env) ([]Result, error) {
	path := filepath.Join(e.Work, "blk-model.img")
	if err := writePatternFile(path, blkModelFile); err != nil {
		return nil, err
	}
	defer os.Remove(path)
	e.Logf("virtio-blk-model: blk.Device on a %d MiB file vs pread/pwrite (and, one at a time, copies through the host's own mapping of the file), alternately, %d runs each", blkModelFile>>20, e.Runs)
	var out []Result
	for _, p := range blkModelPatterns() {
		r := Result{Suite: "virtio-blk", Metric: p.metric(), Unit: p.unit(), HigherIsBetter: true,
			PeerName: "host p" + p.op(),
			Note:     fmt.Sprintf("no VM: a fake driver on the device model, %d requests a run; the host makes them one at a time", p.n)}
		var mapped Sample // one request at a time only
		for i := -1; i < e.Runs; i++ {
			dev, err := runBlkModel(path, p)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p.metric(), err)
			}
			host, err := runBlkHost(path, p, false)
			if err != nil {
				return nil, fmt.Errorf("%s, host: %w", p.metric(), err)
			}
			hm := time.Duration(0)
			if p.depth == 1 {
				if hm, err = runBlkHost(path, p, true); err != nil {
					return nil, fmt.Errorf("%s, host mapping: %w", p.metric(), err)
				}
			}
			if i >= 0 {
				r.VMM.Values = append(r.VMM.Values, p.value(dev))
				r.Peer.Values = append(r.Peer.Values, p.value(host))
				if hm > 0 {
					mapped.Values = append(mapped.Values, p.value(hm))
				}
			}
		}
		setAtLeast(&r, blkModelTarget, "host")
		if len(mapped.Values) > 0 {
			r.Note += fmt.Sprintf("; the host copying through its own shared mapping of the file, as blk.Device does for cached pages, in the same runs: %s; blk.Device %.2f× of it",
				formatSample(mapped, r.Unit), r.VMM.Median()/mapped.Median())
		}
		out = append(out, r)
	}
	return out, nil
}

// runBlkHost makes p's transfers on the host, one at a time, and returns
// how long they took: with pread or pwrite, or, mapped, with copies to and
// from a fresh shared mapping of the file, the host's own fastest way to
// the page cache and the one blk.Device takes for cached pages. Mapping
// the file is timed with the copies, as opening the disk is with the
// device's requests.
func runBlkHost(path string, p blkPattern, mapped bool) (time.Duration, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, p.size)
	for i := range buf {
		buf[i] = byte(i) + 1
	}
	start := time.Now()
	var m []byte
	if mapped {
		if m, err = unix.Mmap(int(f.Fd()), 0, blkModelFile, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != nil {
			return 0, err
		}
		defer unix.Munmap(m)
	}
	read := p.typ == blk.TypeIn
	off := int64(0)
	for range p.n {
		switch {
		case mapped && read:
			copy(buf, m[off:])
		case mapped:
			copy(m[off:off+int64(p.size)], buf)
		case read:
			_, err = f.ReadAt(buf, off)
		default:
			_, err = f.WriteAt(buf, off)
		}
		if err != nil {
			return 0, err
		}
		if off += int64(p.size); off+int64(p.size) > blkModelFile {
			off = 0
		}
	}
	return time.Since(start), nil
}

// runBlkModel runs p's requests through a fresh blk.Device and returns
// how long they took, from the first notification to the last completion.
func runBlkModel(path string, p blkPattern) (time.Duration, error) {
	return timeDriver(func(b *testing.B) (*blkDriver, error) { return newBlkDriver(b, path, p) })
}

// timeDriver makes a driver and returns how long its run took.
func timeDriver(newDriver func(b *testing.B) (*blkDriver, error)) (time.Duration, error) {
	var took time.Duration
	var runErr error
	err := benchmarkOnce(func(b *testing.B) {
		d, err := newDriver(b)
		if err != nil {
			runErr = err
			b.FailNow()
		}
		defer d.close()
		if took, err = d.run(); err != nil {
			runErr = err
			b.FailNow()
		}
	})
	if runErr != nil {
		return 0, runErr
	}
	if err != nil {
		return 0, err
	}
	return took, nil
}

// benchmarkOnce runs f once through testing.Benchmark, which gives it the
// testing.B that virtiotest wants, outside `go test`. With benchtime "1x"
// the benchmark function runs with b.N = 1 only.
func benchmarkOnce(f func(b *testing.B)) error {
	testing.Init() // registers -test.* on the command line's flag set; once
	if err := flag.Set("test.benchtime", "1x"); err != nil {
		return err
	}
	if testing.Benchmark(f).N == 0 {
		return errors.New("the benchmark failed")
	}
	return nil
}

// blkDriver is the guest side: request slot i always uses descriptors 3i
// (header), 3i+1 (data) and 3i+2 (status), so a slot is free again as soon
// as its head comes back. virtiotest lays the queue and buffers out; the
// rings and buffers are then worked here directly, as a guest works its
// own memory (virtiotest's helpers call testing.B.Helper, whose stack walk
// costs more than the device).
type blkDriver struct {
	p      blkPattern
	closer func() error // the backend's Close
	dev    *blk.Device
	mem    *guestmem.Memory
	ring   guestRing
	irq    *chanIRQ

	hdr, status [][]byte // each slot's, in guest memory
	next        uint64   // sector of the next request
	sectors     uint64   // requests wrap here
}

// guestRing is the fake drivers' end of one split virtqueue that
// virtiotest laid out, worked as a guest works its rings: in place, avail
// and used being their bytes in guest memory, with Go's bounds checks
// only. A real driver's ring work is a few loads and stores; through
// guestmem's lookups it cost about what the device's own does (which
// indexes the same bytes, kept since Enable).
type guestRing struct {
	size        uint16
	avail, used []byte
	availIdx    uint16
	usedSeen    uint16
	fence       uint32 // target of the RMW that serves as a barrier (arm)
}

func newGuestRing(mem *guestmem.Memory, cfg virtio.Config) (guestRing, error) {
	avail, err := mem.Slice(cfg.AvailRing, virtio.AvailRingSize(cfg.Size))
	if err != nil {
		return guestRing{}, err
	}
	used, err := mem.Slice(cfg.UsedRing, virtio.UsedRingSize(cfg.Size))
	if err != nil {
		return guestRing{}, err
	}
	return guestRing{size: cfg.Size, avail: avail, used: used}, nil
}

// publish puts head in the next available ring entry, then bumps
// avail.idx (§2.7.13). On x86 stores are not reordered with each other,
// so the entry is visible first, as virtio_wmb needs.
func (r *guestRing) publish(head uint16) {
	entry := virtio.AvailRingOffset + virtio.AvailEntrySize*uint64(r.availIdx%r.size)
	binary.LittleEndian.PutUint16(r.avail[entry:], head)
	r.availIdx++
	binary.LittleEndian.PutUint16(r.avail[virtio.AvailIdxOffset:], r.availIdx)
}

// arm asks the device for an interrupt when it returns the next chain:
// used_event is the used ring index the driver waits for (§2.7.7). It
// then reports whether that chain is there already: the store must be
// visible before used.idx is read again, or the device could return it
// unseen and, having read the old used_event, not signal (virtio_mb in
// Linux's virtqueue_poll).
func (r *guestRing) arm() bool {
	binary.LittleEndian.PutUint16(r.avail[virtio.UsedEventOffset(r.size):], r.usedSeen)
	atomic.AddUint32(&r.fence, 1) // a locked instruction: a full barrier on x86
	return r.usedIdx() != r.usedSeen
}

func (r *guestRing) usedIdx() uint16 {
	return binary.LittleEndian.Uint16(r.used[virtio.UsedIdxOffset:])
}

// reap calls done for each head the device returned since the last call.
func (r *guestRing) reap(done func(head uint16) error) error {
	var err error
	for idx := r.usedIdx(); err == nil && r.usedSeen != idx; r.usedSeen++ {
		elem := virtio.UsedRingOffset + virtio.UsedElemSize*uint64(r.usedSeen%r.size)
		err = done(uint16(binary.LittleEndian.Uint32(r.used[elem+virtio.UsedElemIDOffset:])))
	}
	return err
}

// chanIRQ is a virtio.Interrupt that wakes whoever waits on signalled; a
// token waiting already absorbs more signals.
type chanIRQ struct{ signalled chan struct{} }

func newChanIRQ() *chanIRQ { return &chanIRQ{signalled: make(chan struct{}, 1)} }

func (c *chanIRQ) Signal(int) error {
	select {
	case c.signalled <- struct{}{}:
	default:
	}
	return nil
}

func newBlkDriver(b *testing.B, path string, p blkPattern) (*blkDriver, error) {
	backend, err := blk.NewFileBackend(path, false)
	if err != nil {
		return nil, err
	}
	return newBlkDriverOn(b, backend, backend.Close, p)
}

// newBlkDriverOn is newBlkDriver over any backend; closer closes it.
func newBlkDriverOn(b *testing.B, backend blk.Backend, closer func() error, p blkPattern) (*blkDriver, error) {
	dev, err := blk.New(backend, blk.Options{}) // vmm's options: the default workers
	if err != nil {
		closer()
		return nil, err
	}
	d, cfg, err := newBlkLayout(b, p, closer)
	if err != nil {
		return nil, err
	}
	d.dev = dev
	features := blk.FeatureFlush | virtio.FeatureVersion1 | virtio.FeatureEventIdx
	q, err := virtio.NewQueue(blkModelQueue)
	if err == nil {
		err = q.Enable(d.mem, cfg)
	}
	if err == nil {
		err = dev.Activate(d.mem, features, []*virtio.Queue{q}, d.irq)
	}
	if err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

// newBlkLayout lays out p's requests in a fresh guest memory, as a driver
// does (see blkDriver), and returns the driver, with no device yet, and
// the queue's configuration. A failure closes closer, as close would.
func newBlkLayout(b *testing.B, p blkPattern, closer func() error) (*blkDriver, virtio.Config, error) {
	mem, err := guestmem.New([]guestmem.RegionSpec{{Start: 0, Size: blkModelMem}})
	if err != nil {
		closer()
		return nil, virtio.Config{}, err
	}
	d := &blkDriver{p: p, closer: closer, mem: mem, irq: newChanIRQ(),
		sectors: uint64(blkModelFile / p.size * p.size / blk.SectorSize)}
	drv := virtiotest.New(b, mem, blkModelQueue)
	dataFlag := uint16(virtio.DescFWrite)
	if p.typ == blk.TypeOut {
		dataFlag = 0
	}
	data := make([]byte, p.size)
	for i := range data {
		data[i] = byte(i) + 1
	}
	for i := range uint16(p.depth) {
		hdr := drv.Alloc(blk.HeaderSize)
		// A guest reads and writes whole pages of its page cache, so the
		// data starts on a page, as the host's buffer does: a copy to or
		// from a buffer that is not costs the kernel twice as much.
		drv.Alloc(uint64(-drv.Alloc(0) % guestPage))
		buf, status := drv.Put(data), drv.Alloc(1)
		drv.WriteDesc(3*i, virtio.Descriptor{Addr: hdr, Len: blk.HeaderSize, Flags: virtio.DescFNext, Next: 3*i + 1})
		drv.WriteDesc(3*i+1, virtio.Descriptor{Addr: buf, Len: uint32(p.size), Flags: dataFlag | virtio.DescFNext, Next: 3*i + 2})
		drv.WriteDesc(3*i+2, virtio.Descriptor{Addr: status, Len: 1, Flags: virtio.DescFWrite})
		hb, herr := mem.Slice(hdr, blk.HeaderSize)
		sb, serr := mem.Slice(status, blk.StatusSize)
		if err := errors.Join(herr, serr); err != nil {
			d.close()
			return nil, virtio.Config{}, err
		}
		d.hdr, d.status = append(d.hdr, hb), append(d.status, sb)
	}
	cfg := drv.Config(blk.FeatureFlush | virtio.FeatureVersion1 | virtio.FeatureEventIdx)
	if d.ring, err = newGuestRing(mem, cfg); err != nil {
		d.close()
		return nil, virtio.Config{}, err
	}
	return d, cfg, nil
}

func (d *blkDriver) close() {
	if d.dev != nil {
		d.dev.Reset()
	}
	d.mem.Close()
	d.closer()
}

// submit fills slot's header for the next sectors and makes the request
// available.
func (d *blkDriver) submit(slot uint16) {
	h := d.hdr[slot]
	binary.LittleEndian.PutUint32(h[0:], d.p.typ) // type; reserved stays 0
	binary.LittleEndian.PutUint64(h[8:], d.next)  // sector
	d.next += uint64(d.p.size / blk.SectorSize)
	if d.next >= d.sectors {
		d.next = 0
	}
	d.ring.publish(3 * slot)
}

// run completes p.n requests with up to p.depth outstanding and returns
// the time they took. It works the ring as Linux's virtio driver does
// with VIRTIO_F_EVENT_IDX (virtqueue_enable_cb_prepare, then
// virtqueue_poll): after each kick it takes what the used ring holds and
// refills those slots; only when it finds nothing does it ask for an
// interrupt (used_event, §2.7.10), look once more, and sleep. That is
// fair to the host's loop of pread/pwrite, which never sleeps either:
// the device still pops, parses, transfers, answers and publishes every
// request, and signals whenever the driver asked; it only skips the
// interrupts the driver did not ask for, as the spec lets it.
func (d *blkDriver) run() (time.Duration, error) {
	start := time.Now()
	submitted, completed := 0, 0
	for ; submitted < min(d.p.depth, d.p.n); submitted++ {
		d.submit(uint16(submitted))
	}
	if err := d.dev.Notify(0); err != nil {
		return 0, err
	}
	// One watchdog for the run: a timer per wait would cost about what
	// the device does.
	stuck := make(chan struct{})
	watchdog := time.AfterFunc(modelTimeout, func() { close(stuck) })
	defer watchdog.Stop()
	for completed < d.p.n {
		got, refilled := 0, false
		err := d.ring.reap(func(head uint16) error {
			slot := head / 3
			if st := d.status[slot][0]; st != blk.StatusOK {
				return fmt.Errorf("request in slot %d: status %d", slot, st)
			}
			got++
			completed++
			if submitted < d.p.n {
				submitted++
				refilled = true
				d.submit(slot)
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
		if refilled {
			if err := d.dev.Notify(0); err != nil {
				return 0, err
			}
		}
		if got > 0 {
			continue
		}
		// Nothing came back: ask for an interrupt at the next completion,
		// look again in case it came meanwhile, and sleep. A stale signal
		// only wakes us to look again.
		if d.ring.arm() {
			continue
		}
		select {
		case <-d.irq.signalled:
		case <-stuck:
			return 0, fmt.Errorf("%d of %d requests done after %v", completed, d.p.n, modelTimeout)
		}
	}
	return time.Since(start), nil
}
