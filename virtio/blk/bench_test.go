package blk_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/virtio"
	"github.com/vmm-dev/vmm/virtio/blk"
	"github.com/vmm-dev/vmm/virtio/virtiotest"
)

// The device data path alone: a fake driver keeps benchDepth requests
// outstanding on a real file (in the page cache) and refills each as it
// comes back; BenchmarkHost does the same transfers with plain
// pread/pwrite on one goroutine, for comparison.
const (
	benchFileSize  = 64 << 20
	benchDepth     = 16
	benchQueueSize = 64 // three descriptors per request
	benchMemSize   = 8 << 20
)

var benchSizes = []int{4 << 10, 64 << 10}

// benchFile writes a file of non-zero bytes (no holes: reads copy real
// pages) and returns its path.
func benchFile(b *testing.B) string {
	b.Helper()
	return tempDisk(b, pattern(benchFileSize, 1))
}

func opName(typ uint32) string {
	if typ == blk.TypeIn {
		return "read"
	}
	return "write"
}

func BenchmarkDevice(b *testing.B) {
	path := benchFile(b)
	for _, typ := range []uint32{blk.TypeIn, blk.TypeOut} {
		for _, size := range benchSizes {
			for _, workers := range []int{1, 16} {
				b.Run(fmt.Sprintf("%s/%dKiB/N=%d", opName(typ), size>>10, workers), func(b *testing.B) {
					newBenchDriver(b, openDisk(b, path, false), workers, typ, size).run()
				})
			}
		}
	}
}

func BenchmarkHost(b *testing.B) {
	path := benchFile(b)
	for _, typ := range []uint32{blk.TypeIn, blk.TypeOut} {
		for _, size := range benchSizes {
			b.Run(fmt.Sprintf("%s/%dKiB", opName(typ), size>>10), func(b *testing.B) {
				f, err := os.OpenFile(path, os.O_RDWR, 0)
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				buf := pattern(size, 2)
				b.SetBytes(int64(size))
				off := int64(0)
				for b.Loop() {
					if typ == blk.TypeIn {
						_, err = f.ReadAt(buf, off)
					} else {
						_, err = f.WriteAt(buf, off)
					}
					if err != nil {
						b.Fatal(err)
					}
					off = (off + int64(size)) % benchFileSize
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
			})
		}
	}
}

// benchDriver is a guest that reads or writes the disk sequentially in
// requests of one size. Request slot i always uses descriptors 3i (the
// header), 3i+1 (the data) and 3i+2 (the status), so a slot is free again
// as soon as its head comes back, whatever the order. virtiotest lays the
// queue out; the rings are then worked here directly, because its
// helpers call testing.B.Helper, whose stack walk would cost more than
// the device.
type benchDriver struct {
	b    *testing.B
	dev  *blk.Device
	drv  *virtiotest.Driver
	mem  *guestmem.Memory
	cfg  virtio.Config
	irq  *irqRecorder
	typ  uint32
	size int

	next     uint64 // sector of the next request
	hdr      []guestmem.GuestAddr
	status   []guestmem.GuestAddr
	availIdx uint16
	usedSeen uint16
	used     []uint16 // heads returned, reused between interrupts
}

func newBenchDriver(b *testing.B, backend blk.Backend, workers int, typ uint32, size int) *benchDriver {
	b.Helper()
	dev, err := blk.New(backend, blk.Options{Workers: workers})
	if err != nil {
		b.Fatal(err)
	}
	mem := guestmem.NewTest(benchMemSize)
	d := &benchDriver{b: b, dev: dev, drv: virtiotest.New(b, mem, benchQueueSize), mem: mem, irq: newIRQRecorder(), typ: typ, size: size}
	dataFlag := uint16(virtio.DescFWrite)
	if typ == blk.TypeOut {
		dataFlag = 0
	}
	for i := range uint16(benchDepth) {
		hdr, data, status := d.drv.Alloc(blk.HeaderSize), d.drv.Put(pattern(size, byte(i))), d.drv.Alloc(1)
		d.drv.WriteDesc(3*i, virtio.Descriptor{Addr: hdr, Len: blk.HeaderSize, Flags: virtio.DescFNext, Next: 3*i + 1})
		d.drv.WriteDesc(3*i+1, virtio.Descriptor{Addr: data, Len: uint32(size), Flags: dataFlag | virtio.DescFNext, Next: 3*i + 2})
		d.drv.WriteDesc(3*i+2, virtio.Descriptor{Addr: status, Len: 1, Flags: virtio.DescFWrite})
		d.hdr, d.status = append(d.hdr, hdr), append(d.status, status)
	}
	q, err := virtio.NewQueue(benchQueueSize)
	if err != nil {
		b.Fatal(err)
	}
	d.cfg = d.drv.Config(blk.FeatureFlush)
	if err := q.Enable(mem, d.cfg); err != nil {
		b.Fatal(err)
	}
	if err := dev.Activate(mem, blk.FeatureFlush, []*virtio.Queue{q}, d.irq); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(dev.Reset)
	return d
}

// submit makes slot's request available for the next sectors.
func (d *benchDriver) submit(slot uint16) {
	var h [blk.HeaderSize]byte
	binary.LittleEndian.PutUint32(h[:], d.typ)
	binary.LittleEndian.PutUint64(h[8:], d.next)
	if err := d.mem.WriteAt(h[:], d.hdr[slot]); err != nil {
		d.b.Fatal(err)
	}
	d.publish(3 * slot)
	d.next = (d.next + uint64(d.size/blk.SectorSize)) % (benchFileSize / blk.SectorSize)
}

// publish puts head in the next available ring entry, then bumps
// avail.idx (§2.7.13).
func (d *benchDriver) publish(head uint16) {
	entry := d.cfg.AvailRing + guestmem.GuestAddr(virtio.AvailRingOffset+virtio.AvailEntrySize*uint64(d.availIdx%benchQueueSize))
	d.availIdx++
	if err := errors.Join(d.mem.WriteUint16(entry, head), d.mem.WriteUint16(d.cfg.AvailRing+virtio.AvailIdxOffset, d.availIdx)); err != nil {
		d.b.Fatal(err)
	}
}

// reap collects the heads the device returned since the last call. The
// caller holds the device lock: workers add to the ring meanwhile.
func (d *benchDriver) reap() {
	d.used = d.used[:0]
	idx, err := d.mem.ReadUint16(d.cfg.UsedRing + virtio.UsedIdxOffset)
	for ; err == nil && d.usedSeen != idx; d.usedSeen++ {
		elem := d.cfg.UsedRing + guestmem.GuestAddr(virtio.UsedRingOffset+virtio.UsedElemSize*uint64(d.usedSeen%benchQueueSize))
		var id uint32
		id, err = d.mem.ReadUint32(elem + virtio.UsedElemIDOffset)
		d.used = append(d.used, uint16(id))
	}
	if err != nil {
		d.b.Fatal(err)
	}
}

func (d *benchDriver) notify() {
	if err := d.dev.Notify(0); err != nil {
		d.b.Fatal(err)
	}
}

// run completes b.N requests with up to benchDepth outstanding, taking
// completions from the used ring after each interrupt.
func (d *benchDriver) run() {
	b := d.b
	b.SetBytes(int64(d.size))
	b.ResetTimer()
	submitted := 0
	for ; submitted < min(benchDepth, b.N); submitted++ {
		d.submit(uint16(submitted))
	}
	d.notify()
	for done := 0; done < b.N; {
		<-d.irq.signalled
		d.dev.Locked(d.reap)
		refilled := false
		for _, head := range d.used {
			slot := head / 3
			var st [blk.StatusSize]byte
			if err := d.mem.ReadAt(st[:], d.status[slot]); err != nil || st[0] != blk.StatusOK {
				b.Fatalf("slot %d: status %d, %v", slot, st[0], err)
			}
			done++
			if submitted < b.N {
				d.submit(slot)
				submitted++
				refilled = true
			}
		}
		if refilled {
			d.notify()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
