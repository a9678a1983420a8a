package main

import (
	"encoding/binary"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmm-dev/vmm/virtio"
	"github.com/vmm-dev/vmm/virtio/blk"
)

// The floor of the one-outstanding blk model rows: the same fake driver,
// the same file and the same transfer system calls as blk.Device makes for
// a lone request, with a device that does the least any device could
// (floorDevice). What it takes beyond the host's own loop is what the
// ring protocol and the system call on guest memory cost by themselves on
// this host; what blk.Device takes beyond it is the cost of a device that
// faces a guest: every check of what the guest wrote, the queue's
// bookkeeping, the EVENT_IDX barriers, the locks.

// blkNotifier is the device end of the fake driver: blk.Device, or
// floorDevice.
type blkNotifier interface {
	Notify(q int) error
	Reset()
}

// floorDevice pops what the driver made available, reads each chain by the
// layout the fake driver is known to use (header, data and status at head,
// head+1 and head+2), takes the sector from the header, makes the system
// call blk.Device makes for a lone request (preadv2 with RWF_NOWAIT for a
// read, pwrite for a write) straight on guest memory, and writes the
// status and the used entry. It checks nothing a guest could get wrong
// (the descriptors' bounds, flags and lengths, the request's type and
// range: a hostile guest could make it write anywhere in guest memory or
// panic it), takes no lock, and never interrupts the driver, which the
// model's driver needs only when a completion comes late (the floor
// completes each request before Notify returns). No device that faces a
// guest can do less.
type floorDevice struct {
	f                   *os.File
	fd                  int
	write               bool
	mem                 []byte // all of guest memory, from address 0
	desc, avail, used   []byte
	size                uint16
	nextAvail, nextUsed uint16
	iov                 [1][]byte
}

func newFloorDevice(path string, p blkPattern, mem []byte, desc, avail, used []byte, size uint16) (*floorDevice, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	return &floorDevice{f: f, fd: int(f.Fd()), write: p.typ == blk.TypeOut, mem: mem,
		desc: desc, avail: avail, used: used, size: size}, nil
}

// Notify serves every request made available since the last call.
func (f *floorDevice) Notify(int) error {
	le := binary.LittleEndian
	for f.nextAvail != le.Uint16(f.avail[virtio.AvailIdxOffset:]) {
		head := le.Uint16(f.avail[virtio.AvailRingOffset+virtio.AvailEntrySize*uint64(f.nextAvail%f.size):])
		f.nextAvail++
		hdr, data, status := f.buffer(head), f.buffer(head+1), f.buffer(head+2)
		off := int64(le.Uint64(hdr[8:]) * blk.SectorSize)
		written := uint32(1)
		var err error
		if f.write {
			_, err = unix.Pwrite(f.fd, data, off)
		} else {
			f.iov[0] = data
			if _, err = unix.Preadv2(f.fd, f.iov[:], off, unix.RWF_NOWAIT); err == unix.EAGAIN {
				_, err = unix.Pread(f.fd, data, off) // where blk.Device hands it to a worker
			}
			written += uint32(len(data))
		}
		if err != nil {
			return err
		}
		status[0] = blk.StatusOK
		elem := f.used[virtio.UsedRingOffset+virtio.UsedElemSize*uint64(f.nextUsed%f.size):]
		le.PutUint32(elem[virtio.UsedElemIDOffset:], uint32(head))
		le.PutUint32(elem[virtio.UsedElemLenOffset:], written)
		f.nextUsed++
		le.PutUint16(f.used[virtio.UsedIdxOffset:], f.nextUsed)
	}
	return nil
}

// buffer is the guest memory descriptor idx names.
func (f *floorDevice) buffer(idx uint16) []byte {
	d := f.desc[uint64(idx)*virtio.DescSize:]
	addr := binary.LittleEndian.Uint64(d)
	return f.mem[addr : addr+uint64(binary.LittleEndian.Uint32(d[8:]))]
}

// Reset closes the file.
func (f *floorDevice) Reset() { f.f.Close() }

// runBlkFloor is runBlkModel with floorDevice in blk.Device's place.
func runBlkFloor(path string, p blkPattern) (time.Duration, error) {
	return timeDriver(func(b *testing.B) (*blkDriver, error) { return newBlkFloorDriver(b, path, p) })
}
