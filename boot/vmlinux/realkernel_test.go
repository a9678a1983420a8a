package vmlinux

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/boot"
	"github.com/vmm-dev/vmm/guestmem"
)

// TestExtractVmlinux_RealKernel decompresses the Debian cloud kernel that
// images caches, when this host has one.
func TestExtractVmlinux_RealKernel(t *testing.T) {
	path, k := cachedKernel(t)
	start := time.Now()
	image, err := Extract(bytes.NewReader(k), int64(len(k)))
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d-byte bzImage to a %d-byte vmlinux in %v", path, len(k), len(image), took)
	f, err := elf.NewFile(bytes.NewReader(image))
	if err != nil {
		t.Fatalf("not an ELF: %v", err)
	}
	if f.Machine != elf.EM_X86_64 || f.Entry != 0x100_0000 {
		t.Errorf("machine %v entry %#x, want EM_X86_64 0x1000000", f.Machine, f.Entry)
	}
	v, err := Parse(image)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Check(1 << 30); err != nil {
		t.Fatal(err)
	}
	t.Logf("entry %#x, %d PT_LOAD segments (init_size ends at %#x)", v.Entry, len(v.Segments), kernelEndOf(t, k))
}

// The real kernel, extracted and parsed here, loads with boot.Load as the
// VM process does it from the cache.
func TestLoad_Vmlinux_RealKernel(t *testing.T) {
	_, k := cachedKernel(t)
	image, err := Extract(bytes.NewReader(k), int64(len(k)))
	if err != nil {
		t.Fatal(err)
	}
	v, err := Parse(image)
	if err != nil {
		t.Fatal(err)
	}
	mem := guestmem.NewTest(128 << 20)
	start := time.Now()
	st, err := boot.Load(mem, boot.Config{Kernel: bytes.NewReader(k), KernelSize: int64(len(k)),
		Initrd: zeroReader{}, InitrdSize: 1 << 20, Cmdline: "console=ttyS0", Vmlinux: v})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Load of the vmlinux took %v", time.Since(start))
	zp, err := mem.Slice(boot.ZeroPageAddr+0x218, 4)
	if err != nil {
		t.Fatal(err)
	}
	initrd := uint64(binary.LittleEndian.Uint32(zp))
	if st.RIP != 0x100_0000 || initrd < kernelEndOf(t, k) {
		t.Errorf("RIP %#x, initrd at %#x below the kernel's init_size end %#x", st.RIP, initrd, kernelEndOf(t, k))
	}
}

// TestCache_RealKernel times a miss and a hit of the cache on the real
// kernel: the hit skips the decompression.
func TestCache_RealKernel(t *testing.T) {
	path, _ := cachedKernel(t)
	dir := t.TempDir()
	for _, what := range []string{"miss", "hit"} {
		start := time.Now()
		image, v, err := Cache(path, dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %v (%s, %d segments)", what, time.Since(start), image, len(v.Segments))
	}
}

// zeroReader is an initrd of any size that costs no memory in the test.
type zeroReader struct{}

func (zeroReader) ReadAt(p []byte, _ int64) (int, error) {
	clear(p)
	return len(p), nil
}

// cachedKernel returns the kernel images caches, or skips.
func cachedKernel(t *testing.T) (string, []byte) {
	t.Helper()
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skip(err)
	}
	paths, _ := filepath.Glob(filepath.Join(home, ".cache/vmm/kernels/sha256-*/vmlinuz"))
	if len(paths) == 0 {
		t.Skip("no cached kernel under ~/.cache/vmm/kernels")
	}
	k, err := os.ReadFile(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	return paths[0], k
}

// kernelEndOf is where the decompressor's init_size working area ends for
// a relocatable kernel loaded at 1 MiB (boot's kernelEnd).
func kernelEndOf(t *testing.T, k []byte) uint64 {
	h, err := boot.ParseHeader(bytes.NewReader(k), int64(len(k)))
	if err != nil {
		t.Fatal(err)
	}
	a := uint64(h.KernelAlignment)
	return max((uint64(boot.KernelAddr)+a-1)/a*a, h.PrefAddress) + uint64(h.InitSize)
}
