package boot

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/guestmem"
)

// TestExtractVmlinux_RealKernel decompresses the Debian cloud kernel that
// images caches, when this host has one.
func TestExtractVmlinux_RealKernel(t *testing.T) {
	path, k := cachedKernel(t)
	start := time.Now()
	image, err := ExtractVmlinux(bytes.NewReader(k), int64(len(k)))
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
	v, err := parseVmlinux(image, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("entry %#x, %d PT_LOAD segments, end %#x (init_size ends at %#x)", v.entry, len(v.segments), v.end, kernelEndOf(t, k))
}

func TestLoad_HostDecompress_RealKernel(t *testing.T) {
	_, k := cachedKernel(t)
	mem := guestmem.NewTest(128 << 20)
	start := time.Now()
	st, err := Load(mem, Config{Kernel: bytes.NewReader(k), KernelSize: int64(len(k)),
		Initrd: zeroReader{}, InitrdSize: 1 << 20, Cmdline: "console=ttyS0", HostDecompress: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Load with HostDecompress took %v", time.Since(start))
	initrd := uint64(binary.LittleEndian.Uint32(read(t, mem, ZeroPageAddr+0x218, 4)))
	if st.RIP != 0x100_0000 || initrd < kernelEndOf(t, k) {
		t.Errorf("RIP %#x, initrd at %#x below the kernel's init_size end %#x", st.RIP, initrd, kernelEndOf(t, k))
	}
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

func kernelEndOf(t *testing.T, k []byte) uint64 {
	h, err := ParseHeader(bytes.NewReader(k), int64(len(k)))
	if err != nil {
		t.Fatal(err)
	}
	return kernelEnd(h)
}
