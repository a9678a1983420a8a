package blk_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/vmm-dev/vmm/virtio"
	"github.com/vmm-dev/vmm/virtio/blk"
)

func TestNew_QueueSize(t *testing.T) {
	for _, size := range []uint16{2, 3, 100} {
		if _, err := blk.New(newMemDisk(8), blk.Options{QueueSize: size}); !errors.Is(err, blk.ErrQueueSize) {
			t.Errorf("queue size %d: %v", size, err)
		}
	}
	dev, err := blk.New(newMemDisk(8), blk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := dev.QueueMaxSizes(); len(got) != 1 || got[0] != blk.DefaultQueueSize {
		t.Errorf("QueueMaxSizes = %v", got)
	}
	if dev.ID() != virtio.IDBlock {
		t.Errorf("ID = %d", dev.ID())
	}
	if f := dev.Features(); f != blk.FeatureFlush|blk.FeatureSegMax|blk.FeatureBlkSize {
		t.Errorf("Features = %#x", f)
	}
}

func TestReadConfig(t *testing.T) {
	disk := newMemDisk(8)
	disk.sectors = 0x1122334455667788
	dev, err := blk.New(disk, blk.Options{QueueSize: 128})
	if err != nil {
		t.Fatal(err)
	}
	read := func(off uint64, n int) []byte {
		b := bytes.Repeat([]byte{0xff}, n)
		dev.ReadConfig(off, b)
		return b
	}
	le := binary.LittleEndian
	if got := le.Uint64(read(blk.ConfigCapacity, 8)); got != disk.sectors {
		t.Errorf("capacity %#x", got)
	}
	if got := le.Uint32(read(blk.ConfigSegMax, 4)); got != 126 {
		t.Errorf("seg_max %d, want 126", got)
	}
	if got := le.Uint32(read(blk.ConfigBlkSize, 4)); got != blk.SectorSize {
		t.Errorf("blk_size %d", got)
	}
	if got := le.Uint32(read(blk.ConfigSizeMax, 4)); got != 0 {
		t.Errorf("size_max %d, not offered", got)
	}
	if got := read(blk.ConfigCapacity+4, 2); !bytes.Equal(got, []byte{0x44, 0x33}) {
		t.Errorf("capacity bytes 4-5: % x", got)
	}
	for _, off := range []uint64{blk.ConfigBlkSize + 1, blk.ConfigSize, 1 << 40, ^uint64(0)} {
		got := read(off, 4)
		want := make([]byte, 4)
		if off == blk.ConfigBlkSize+1 {
			want = []byte{0x02, 0, 0, 0} // blk_size's upper bytes, then zeros past the end
		}
		if !bytes.Equal(got, want) {
			t.Errorf("offset %#x: % x, want % x", off, got, want)
		}
	}
	dev.WriteConfig(blk.ConfigCapacity, make([]byte, 8))
	if got := le.Uint64(read(blk.ConfigCapacity, 8)); got != disk.sectors {
		t.Errorf("capacity writable: %#x", got)
	}
}
