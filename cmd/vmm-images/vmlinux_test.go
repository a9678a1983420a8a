package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmm-dev/vmm/boot"
	"github.com/vmm-dev/vmm/vmm"
	"github.com/vmm-dev/vmm/vmm/container"
)

// minimalELF is an ELF64 x86-64 executable with one PT_LOAD of text at
// 16 MiB, entered at its start (the ELF spec's offsets, by hand).
func minimalELF(text []byte) []byte {
	const ehsize, phentsize, paddr = 64, 56, 0x100_0000
	le := binary.LittleEndian
	b := make([]byte, ehsize+phentsize)
	copy(b, "\x7fELF")
	b[4], b[5], b[6] = 2, 1, 1 // ELFCLASS64, ELFDATA2LSB, EV_CURRENT
	le.PutUint16(b[16:], 2)    // ET_EXEC
	le.PutUint16(b[18:], 62)   // EM_X86_64
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[24:], paddr)
	le.PutUint64(b[32:], ehsize)
	le.PutUint16(b[52:], ehsize)
	le.PutUint16(b[54:], phentsize)
	le.PutUint16(b[56:], 1)
	ph := b[ehsize:]
	le.PutUint32(ph[0:], 1) // PT_LOAD
	le.PutUint64(ph[8:], uint64(len(b)))
	le.PutUint64(ph[24:], paddr)
	le.PutUint64(ph[32:], uint64(len(text)))
	le.PutUint64(ph[40:], uint64(len(text))+0x1000)
	return append(b, text...)
}

// writeKernel writes a bzImage whose payload is payload.
func writeKernel(t *testing.T, payload []byte) string {
	t.Helper()
	b := boot.BuildBzImage(append(make([]byte, 0x200), payload...), boot.BzImageOptions{})
	binary.LittleEndian.PutUint32(b[0x248:], 0x200)
	binary.LittleEndian.PutUint32(b[0x24C:], uint32(len(payload)))
	p := filepath.Join(t.TempDir(), "bzImage")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func gzipped(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func vmlinuxReply(t *testing.T, args ...string) (int, container.VmlinuxReply) {
	t.Helper()
	var out, errb bytes.Buffer
	code := dispatch(append([]string{"vmlinux"}, args...), strings.NewReader(""), &out, &errb)
	var reply container.VmlinuxReply
	if err := json.Unmarshal(out.Bytes(), &reply); err != nil {
		t.Fatalf("reply %q (stderr %q): %v", out.String(), errb.String(), err)
	}
	return code, reply
}

// vmlinux decompresses into the cache and names the image and its layout;
// asked again, it names the same entry.
func TestVmlinux_RepliesWithTheCachedImage(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	elf := minimalELF(bytes.Repeat([]byte{0x90}, 0x2000))
	kernel := writeKernel(t, gzipped(t, elf))
	code, reply := vmlinuxReply(t, "--", kernel)
	if code != 0 || reply.Error != "" || reply.Layout == nil {
		t.Fatalf("status %d, reply %+v", code, reply)
	}
	if !strings.HasPrefix(reply.Image, filepath.Join(cache, "vmm", "vmlinux")+"/") {
		t.Errorf("image %s is not in the cache %s", reply.Image, cache)
	}
	if got, _ := os.ReadFile(reply.Image); !bytes.Equal(got, elf) {
		t.Error("cached image is not the ELF")
	}
	l := reply.Layout
	if l.Entry != 0x100_0000 || l.ImageSize != int64(len(elf)) || len(l.Segments) != 1 || l.Segments[0].Memsz != 0x3000 {
		t.Errorf("layout %+v", l)
	}
	if code, again := vmlinuxReply(t, kernel); code != 0 || again.Image != reply.Image {
		t.Errorf("second call: status %d, image %s", code, again.Image)
	}
}

// Without a usable cache (no HOME, a read-only disk) the kernel is still
// unpacked, into a temporary file the reply says to remove, with a
// warning; a corrupt kernel is still an error.
func TestVmlinux_NoCache_TemporaryImage(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	elf := minimalELF(bytes.Repeat([]byte{0x90}, 0x2000))
	kernel := writeKernel(t, gzipped(t, elf))
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, env := range map[string]map[string]string{
		"no HOME":            {"XDG_CACHE_HOME": "", "HOME": ""},
		"cache not writable": {"XDG_CACHE_HOME": notADir},
	} {
		t.Run(name, func(t *testing.T) {
			for k, v := range env {
				t.Setenv(k, v)
			}
			var out, errb bytes.Buffer
			code := dispatch([]string{"vmlinux", kernel}, strings.NewReader(""), &out, &errb)
			var reply container.VmlinuxReply
			if err := json.Unmarshal(out.Bytes(), &reply); err != nil {
				t.Fatal(err)
			}
			if code != 0 || !reply.Temporary || reply.Layout == nil || filepath.Dir(reply.Image) != tmp {
				t.Fatalf("status %d, reply %+v; want a temporary image in %s", code, reply, tmp)
			}
			defer os.Remove(reply.Image)
			if got, _ := os.ReadFile(reply.Image); !bytes.Equal(got, elf) {
				t.Error("temporary image is not the ELF")
			}
			if !strings.Contains(errb.String(), "warning") {
				t.Errorf("stderr %q, want a warning", errb.String())
			}
		})
	}
	t.Setenv("XDG_CACHE_HOME", notADir)
	corrupt := gzipped(t, elf)
	corrupt[len(corrupt)/2] ^= 0x55
	if code, reply := vmlinuxReply(t, writeKernel(t, corrupt)); code != 1 || reply.Temporary || reply.Image != "" {
		t.Errorf("corrupt kernel without a cache: status %d, reply %+v", code, reply)
	}
}

// A kernel the host cannot unpack is flagged so vmm falls back; a corrupt
// one is an error, word for word, without the flag.
func TestVmlinux_Errors(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	corrupt := gzipped(t, minimalELF(bytes.Repeat([]byte{0x90}, 0x2000)))
	corrupt[len(corrupt)/2] ^= 0x55
	xz := binary.LittleEndian.AppendUint32(append([]byte{0xFD, '7', 'z', 'X', 'Z', 0}, make([]byte, 64)...), 1<<20)
	tests := []struct {
		name     string
		kernel   string
		fallback string
		want     string
	}{
		{"xz", writeKernel(t, xz), container.FallbackCompression, "xz-compressed"},
		{"corrupt gzip", writeKernel(t, corrupt), "", "kernel payload (gzip)"},
		{"not a bzImage", filepath.Join(t.TempDir(), "missing"), "", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, reply := vmlinuxReply(t, tt.kernel)
			if code != 1 || reply.Fallback != tt.fallback || !strings.Contains(reply.Error, tt.want) || reply.Image != "" {
				t.Fatalf("status %d, reply %+v; want 1, fallback %q and an error about %q", code, reply, tt.fallback, tt.want)
			}
		})
	}
}

func TestVmlinux_Usage(t *testing.T) {
	for _, args := range [][]string{{"vmlinux"}, {"vmlinux", "a", "b"}, {"vmlinux", "--bogus", "k"}} {
		if code, _, _ := run(args...); code != vmm.StatusUsage {
			t.Errorf("%q: status %d, want %d", args, code, vmm.StatusUsage)
		}
	}
}
