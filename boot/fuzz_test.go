package boot

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/vmm-dev/vmm/guestmem"
)

// FuzzParseHeader feeds arbitrary files to ParseHeader and, when one parses,
// to Load: neither may panic, and an accepted header must describe a kernel
// inside the file. The committed corpus is in testdata/fuzz/FuzzParseHeader.
func FuzzParseHeader(f *testing.F) {
	f.Add(BuildBzImage(pattern(0x300, 1), BzImageOptions{}))
	f.Add(defaultSynth().bytes())
	f.Add([]byte("MZ"))
	// One small memory per fuzz worker: Load rewrites what it needs.
	mem := guestmem.NewTest(4 << 20)
	f.Fuzz(func(t *testing.T, file []byte) {
		size := int64(len(file))
		h, err := ParseHeader(bytes.NewReader(file), size)
		if err != nil {
			return
		}
		if h.KernelOffset <= 0 || h.KernelSize <= 0 || h.KernelOffset+h.KernelSize != size {
			t.Fatalf("kernel at %#x+%#x in a %d-byte file", h.KernelOffset, h.KernelSize, size)
		}
		if h.Version < MinProtocolVersion || h.Xloadflags&XLFKernel64 == 0 {
			t.Fatalf("accepted version %#x xloadflags %#x", h.Version, h.Xloadflags)
		}
		_, _ = Load(mem, Config{Kernel: bytes.NewReader(file), KernelSize: size,
			Initrd: zeroReader{}, InitrdSize: int64(len(file)) * 64, Cmdline: "console=ttyS0"})
	})
}

// FuzzVmlinuxCheck feeds arbitrary layouts, as a cache file could hold,
// to Load: every segment is 12 bytes of segs (paddr uint32, off uint16,
// filesz uint16, memsz uint32, little-endian). Nothing may panic, and a
// layout Check accepts for the guest's RAM must load.
func FuzzVmlinuxCheck(f *testing.F) {
	seg := func(paddr uint32, off, filesz uint16, memsz uint32) []byte {
		b := binary.LittleEndian.AppendUint32(nil, paddr)
		b = binary.LittleEndian.AppendUint16(b, off)
		b = binary.LittleEndian.AppendUint16(b, filesz)
		return binary.LittleEndian.AppendUint32(b, memsz)
	}
	f.Add(uint64(testText), uint16(0x5000), append(seg(testText, 0x1000, 0x3000, 0x3000), seg(testData, 0x4000, 0x1000, 0x5000)...))
	f.Add(uint64(testText), uint16(0x100), seg(testText, 0xF0, 0x20, 0x20))
	k := defaultSynth().bytes()
	mem := guestmem.NewTest(32 << 20)
	f.Fuzz(func(t *testing.T, entry uint64, imageSize uint16, segs []byte) {
		v := &Vmlinux{Image: bytes.NewReader(pattern(int(imageSize), 1)), ImageSize: int64(imageSize), Entry: entry}
		le := binary.LittleEndian
		for ; len(segs) >= 12; segs = segs[12:] {
			v.Segments = append(v.Segments, VmlinuxSegment{
				Paddr: uint64(le.Uint32(segs)), Off: uint64(le.Uint16(segs[4:])),
				Filesz: uint64(le.Uint16(segs[6:])), Memsz: uint64(le.Uint32(segs[8:])),
			})
		}
		if v.Check(mem.Size()) != nil {
			return
		}
		if _, err := Load(mem, Config{Kernel: bytes.NewReader(k), KernelSize: int64(len(k)), Vmlinux: v}); err != nil {
			t.Fatalf("checked layout %+v failed to load: %v", v, err)
		}
	})
}
