package boot

import (
	"bytes"
	"debug/elf"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestExtractVmlinux_RealKernel decompresses the Debian cloud kernel that
// images caches, when this host has one.
func TestExtractVmlinux_RealKernel(t *testing.T) {
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
	start := time.Now()
	image, err := ExtractVmlinux(bytes.NewReader(k), int64(len(k)))
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d-byte bzImage to a %d-byte vmlinux in %v", paths[0], len(k), len(image), took)
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

func kernelEndOf(t *testing.T, k []byte) uint64 {
	h, err := ParseHeader(bytes.NewReader(k), int64(len(k)))
	if err != nil {
		t.Fatal(err)
	}
	return kernelEnd(h)
}
