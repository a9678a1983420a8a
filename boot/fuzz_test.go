package boot

import (
	"bytes"
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

// FuzzExtractVmlinux feeds arbitrary bzImages to the host-side decompressor
// (with a 1 MiB output cap) and whatever comes out to the ELF placement:
// neither may panic, and an extracted image never exceeds the cap.
func FuzzExtractVmlinux(f *testing.F) {
	elf := testELF(f, defaultELF())
	for _, c := range []Compression{CompressionGzip, CompressionLZ4, CompressionZstd} {
		f.Add(wrapPayload(compressFor(f, c, elf)))
	}
	f.Add(wrapPayload(elf))
	const limit = 1 << 20
	mem := guestmem.NewTest(32 << 20)
	f.Fuzz(func(t *testing.T, file []byte) {
		image, err := extractVmlinux(bytes.NewReader(file), int64(len(file)), limit)
		if err != nil {
			return
		}
		if len(image) > limit {
			t.Fatalf("extracted %d bytes, over the %d cap", len(image), limit)
		}
		if v, err := parseVmlinux(image, mem.Size()); err == nil {
			if err := v.place(mem); err != nil {
				t.Fatalf("validated vmlinux failed to place: %v", err)
			}
		}
	})
}

// FuzzParseVmlinux feeds arbitrary ELF files to the validation and
// placement: no panic, and whatever validates places without error.
func FuzzParseVmlinux(f *testing.F) {
	f.Add(testELF(f, defaultELF()))
	virt := defaultELF()
	virt.entry += startKernelMap
	f.Add(testELF(f, virt))
	mem := guestmem.NewTest(32 << 20)
	f.Fuzz(func(t *testing.T, image []byte) {
		v, err := parseVmlinux(image, mem.Size())
		if err != nil {
			return
		}
		if err := v.place(mem); err != nil {
			t.Fatalf("validated vmlinux failed to place: %v", err)
		}
	})
}
