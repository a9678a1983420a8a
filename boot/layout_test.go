package boot

import (
	"bytes"
	"errors"
	"testing"

	"github.com/vmm-dev/vmm/guestmem"
)

func loadZeroInitrd(mem *guestmem.Memory, s synth, initrdSize int64) error {
	k := s.bytes()
	_, err := Load(mem, Config{Kernel: bytes.NewReader(k), KernelSize: int64(len(k)),
		Initrd: zeroReader{}, InitrdSize: initrdSize})
	return err
}

func TestLoad_InitrdPlacement(t *testing.T) {
	tests := []struct {
		name          string
		mem           uint64
		initrdAddrMax uint32
		initSize      uint32
		prefAddress   uint64
		relocatable   uint8
		size          int64
		want          uint64 // ramdisk_image; 0 means ErrInitrdTooLarge
	}{
		{"top of RAM, 4 KiB aligned", 64 << 20, 0x7fffffff, 0x20000, 0x100000, 0, 0x1801, 64<<20 - 0x2000},
		{"below initrd_addr_max", 64 << 20, 16<<20 - 1, 0x20000, 0x100000, 0, 1 << 20, 15 << 20},
		{"fills the gap above the kernel exactly", 4 << 20, 0x7fffffff, 1 << 20, 0x100000, 0, 2 << 20, 2 << 20},
		{"one page too many", 4 << 20, 0x7fffffff, 1 << 20, 0x100000, 0, 2<<20 + 1, 0},
		{"larger than RAM", 64 << 20, 0x7fffffff, 0x20000, 0x100000, 0, 65 << 20, 0},
		{"initrd_addr_max below the kernel", 64 << 20, 1<<20 - 1, 0x20000, 0x100000, 0, 4096, 0},
		{"kept off pref_address+init_size", 32 << 20, 0x7fffffff, 8 << 20, 16 << 20, 1, 8 << 20, 24 << 20},
		{"pref_address area leaves too little", 32 << 20, 0x7fffffff, 8 << 20, 16 << 20, 1, 8<<20 + 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := defaultSynth()
			s.initrdAddrMax, s.initSize, s.prefAddress, s.relocatable = tt.initrdAddrMax, tt.initSize, tt.prefAddress, tt.relocatable
			mem := guestmem.NewTest(tt.mem)
			err := loadZeroInitrd(mem, s, tt.size)
			if tt.want == 0 {
				var ie *InitrdTooLargeError
				if !errors.As(err, &ie) || !errors.Is(err, ErrInitrdTooLarge) || ie.Size != uint64(tt.size) {
					t.Fatalf("Load = %v, want InitrdTooLargeError for %d bytes", err, tt.size)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := mem.ReadUint32(ZeroPageAddr + 0x218); uint64(got) != tt.want {
				t.Errorf("ramdisk_image = %#x, want %#x", got, tt.want)
			}
		})
	}
}

func TestLoad_MemoryErrors(t *testing.T) {
	big := defaultSynth()
	big.initSize = 100 << 20
	tests := []struct {
		name string
		mem  *guestmem.Memory
		s    synth
		want error
	}{
		{"below 1 MiB", guestmem.NewTest(512 << 10), defaultSynth(), ErrMemoryTooSmall},
		{"exactly 1 MiB", guestmem.NewTest(1 << 20), defaultSynth(), ErrMemoryTooSmall},
		{"init_size past RAM", guestmem.NewTest(64 << 20), big, ErrKernelTooLarge},
		{"payload past RAM", guestmem.NewTest(1<<20 + 0x800), defaultSynth(), ErrKernelTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := loadZeroInitrd(tt.mem, tt.s, 0); !errors.Is(err, tt.want) {
				t.Fatalf("Load = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestLoad_KernelTooLarge_NamesSizes(t *testing.T) {
	s := defaultSynth()
	s.initSize = 100 << 20
	err := loadZeroInitrd(guestmem.NewTest(64<<20), s, 0)
	var ke *KernelTooLargeError
	if !errors.As(err, &ke) || ke.End != 0x100000+100<<20 || ke.RAMEnd != 64<<20 {
		t.Fatalf("err = %v, want KernelTooLargeError{End 0x6500000, RAMEnd 0x4000000}", err)
	}
}

func TestLoad_NotABzImage_PassesThrough(t *testing.T) {
	junk := make([]byte, 8192)
	_, err := Load(guestmem.NewTest(4<<20), Config{Kernel: bytes.NewReader(junk), KernelSize: int64(len(junk))})
	if !errors.Is(err, ErrNotBzImage) {
		t.Fatalf("err = %v, want ErrNotBzImage", err)
	}
}

func TestLoad_InitrdReaderShort_Fails(t *testing.T) {
	k := defaultSynth().bytes()
	_, err := Load(guestmem.NewTest(4<<20), Config{Kernel: bytes.NewReader(k), KernelSize: int64(len(k)),
		Initrd: bytes.NewReader(make([]byte, 10)), InitrdSize: 4096})
	if err == nil {
		t.Fatal("Load accepted an initrd shorter than InitrdSize")
	}
}

// Two regions, as X86Layout gives past 3 GiB, but small: the initrd stays in
// the first region and every region shows up in the e820 map.
func TestLoad_TwoRegions(t *testing.T) {
	specs := []guestmem.RegionSpec{{Start: 0, Size: 16 << 20}, {Start: 1 << 32, Size: 1 << 20}}
	mem, err := guestmem.NewFromBytes(specs, [][]byte{make([]byte, 16<<20), make([]byte, 1<<20)})
	if err != nil {
		t.Fatal(err)
	}
	if err := loadZeroInitrd(mem, defaultSynth(), 4096); err != nil {
		t.Fatal(err)
	}
	img, _ := mem.ReadUint32(ZeroPageAddr + 0x218)
	n, _ := mem.Slice(ZeroPageAddr+0x1E8, 1)
	last, _ := mem.ReadUint64(ZeroPageAddr + 0x2D0 + 4*20)
	if img != 16<<20-4096 || n[0] != 5 || last != 1<<32 {
		t.Errorf("ramdisk_image %#x, %d e820 entries, last at %#x; want %#x, 5, 0x100000000", img, n[0], last, 16<<20-4096)
	}
}
