package vmlinux

import (
	"bytes"
	"testing"

	"github.com/vmm-dev/vmm/boot"
	"github.com/vmm-dev/vmm/guestmem"
)

// FuzzExtractVmlinux feeds arbitrary bzImages to the host-side decompressor
// (with a 1 MiB output cap), whatever comes out to Parse, and what parses
// to boot.Load: nothing may panic, an extracted image never exceeds the
// cap, and a layout that fits the guest's RAM loads.
func FuzzExtractVmlinux(f *testing.F) {
	elf := testELF(f, defaultELF())
	for _, c := range []Compression{CompressionGzip, CompressionLZ4, CompressionZstd} {
		f.Add(wrapPayload(compressFor(f, c, elf)))
	}
	f.Add(wrapPayload(elf))
	const limit = 1 << 20
	mem := guestmem.NewTest(32 << 20)
	f.Fuzz(func(t *testing.T, file []byte) {
		image, err := extract(bytes.NewReader(file), int64(len(file)), limit)
		if err != nil {
			return
		}
		if len(image) > limit {
			t.Fatalf("extracted %d bytes, over the %d cap", len(image), limit)
		}
		loadParsed(t, mem, image)
	})
}

// FuzzParseVmlinux feeds arbitrary ELF files to Parse and what parses to
// boot.Load: no panic, and whatever fits the guest's RAM loads.
func FuzzParseVmlinux(f *testing.F) {
	f.Add(testELF(f, defaultELF()))
	virt := defaultELF()
	virt.entry += startKernelMap
	f.Add(testELF(f, virt))
	mem := guestmem.NewTest(32 << 20)
	f.Fuzz(func(t *testing.T, image []byte) {
		loadParsed(t, mem, image)
	})
}

// fuzzKernel is the bzImage whose header Load reads beside the vmlinux.
var fuzzKernel = boot.BuildBzImage(make([]byte, 0x1000), boot.BzImageOptions{})

// loadParsed parses image and, when its layout fits mem, loads it: that
// must succeed.
func loadParsed(t *testing.T, mem *guestmem.Memory, image []byte) {
	v, err := Parse(image)
	if err != nil || v.Check(mem.Size()) != nil {
		return
	}
	if _, err := boot.Load(mem, boot.Config{Kernel: bytes.NewReader(fuzzKernel), KernelSize: int64(len(fuzzKernel)), Vmlinux: v}); err != nil {
		t.Fatalf("parsed vmlinux that fits failed to load: %v", err)
	}
}
