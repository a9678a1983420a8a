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
