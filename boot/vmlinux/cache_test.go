package vmlinux

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/boot"
)

// countingCache is a cache under dir whose decompressor counts its calls.
func countingCache(dir string, calls *atomic.Int32) cache {
	return cache{dir: filepath.Join(dir, cacheSubdir), extract: func(r io.ReaderAt, size int64) ([]byte, error) {
		calls.Add(1)
		return Extract(r, size)
	}}
}

// writeKernel writes a gzip bzImage of the test ELF and returns its path
// and the ELF.
func writeKernel(t *testing.T) (string, []byte) {
	t.Helper()
	elf := testELF(t, defaultELF())
	path := filepath.Join(t.TempDir(), "bzImage")
	if err := os.WriteFile(path, wrapPayload(compressFor(t, CompressionGzip, elf)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, elf
}

// checkEntry fails unless image holds elf and layout is its layout.
func checkEntry(t *testing.T, image string, layout *boot.Vmlinux, elf []byte) {
	t.Helper()
	got, err := os.ReadFile(image)
	if err != nil || !bytes.Equal(got, elf) {
		t.Fatalf("cached image %s: %d bytes, %v; want the %d-byte ELF", image, len(got), err, len(elf))
	}
	want, err := Parse(elf)
	if err != nil {
		t.Fatal(err)
	}
	want.Image = nil
	if layout.Image != nil || layout.ImageSize != want.ImageSize || layout.Entry != want.Entry ||
		len(layout.Segments) != len(want.Segments) || layout.Segments[1] != want.Segments[1] {
		t.Fatalf("layout %+v, want %+v", layout, want)
	}
}

func TestCache_HitDoesNotDecompress(t *testing.T) {
	kernel, elf := writeKernel(t)
	var calls atomic.Int32
	c := countingCache(t.TempDir(), &calls)
	first, layout, err := c.get(kernel)
	if err != nil {
		t.Fatal(err)
	}
	checkEntry(t, first, layout, elf)
	second, layout, err := c.get(kernel)
	if err != nil {
		t.Fatal(err)
	}
	checkEntry(t, second, layout, elf)
	if n := calls.Load(); n != 1 || first != second {
		t.Fatalf("%d decompressions, paths %s and %s; want 1 and one path", n, first, second)
	}
	if rel, _ := filepath.Rel(c.dir, filepath.Dir(first)); len(rel) != 64 {
		t.Errorf("entry %s is not keyed by a SHA-256", rel)
	}
}

// A cache that cannot be written is a CacheError that still holds what
// was decompressed: its Temporary writes that, without decompressing again.
func TestCache_Unwritable_TemporaryWithoutDecompressingAgain(t *testing.T) {
	kernel, elf := writeKernel(t)
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	c := countingCache(notADir, &calls)
	_, _, err := c.get(kernel)
	var ce *CacheError
	if !errors.As(err, &ce) {
		t.Fatalf("get on an unwritable cache: %v, want a CacheError", err)
	}
	tmp := t.TempDir()
	path, layout, err := ce.Temporary(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(path) != tmp || calls.Load() != 1 {
		t.Fatalf("temporary image %s, %d decompressions; want one in %s and 1", path, calls.Load(), tmp)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, elf) || layout == nil || layout.ImageSize != int64(len(elf)) {
		t.Errorf("temporary image of %d bytes, layout %+v; want the ELF's %d", len(got), layout, len(elf))
	}
}

// The key is the bzImage's content, not its path.
func TestCache_KeyedOnContent(t *testing.T) {
	kernel, _ := writeKernel(t)
	var calls atomic.Int32
	c := countingCache(t.TempDir(), &calls)
	a, _, err := c.get(kernel)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(kernel)
	copied := filepath.Join(t.TempDir(), "copy")
	os.WriteFile(copied, b, 0o644)
	if got, _, err := c.get(copied); err != nil || got != a || calls.Load() != 1 {
		t.Fatalf("same bytes elsewhere: %s, %v, %d decompressions", got, err, calls.Load())
	}
	other := defaultELF()
	other.entry = testText + 0x10
	os.WriteFile(copied, wrapPayload(compressFor(t, CompressionGzip, testELF(t, other))), 0o644)
	if got, _, err := c.get(copied); err != nil || got == a || calls.Load() != 2 {
		t.Fatalf("other bytes at a cached path: %s, %v, %d decompressions", got, err, calls.Load())
	}
}

// Whatever is wrong with an entry, it is rebuilt and the rebuilt one is
// whole.
func TestCache_CorruptEntry_Rebuilt(t *testing.T) {
	tests := []struct {
		name  string
		spoil func(t *testing.T, entry string)
	}{
		{"layout missing", func(t *testing.T, e string) { rm(t, e, layoutName) }},
		{"image missing", func(t *testing.T, e string) { rm(t, e, imageName) }},
		{"layout not JSON", func(t *testing.T, e string) { write(t, e, layoutName, []byte(`{"ImageSize":`)) }},
		{"layout with unknown fields", func(t *testing.T, e string) { write(t, e, layoutName, []byte(`{"Bogus":1}`)) }},
		{"image truncated", func(t *testing.T, e string) {
			if err := os.Truncate(filepath.Join(e, imageName), 100); err != nil {
				t.Fatal(err)
			}
		}},
		{"image empty", func(t *testing.T, e string) { write(t, e, imageName, nil) }},
		{"image byte flipped", func(t *testing.T, e string) {
			b, _ := os.ReadFile(filepath.Join(e, imageName))
			b[len(b)-1] ^= 1
			write(t, e, imageName, b)
		}},
		{"layout fails boot's check", func(t *testing.T, e string) {
			var l layoutFile
			b, _ := os.ReadFile(filepath.Join(e, layoutName))
			if err := json.Unmarshal(b, &l); err != nil {
				t.Fatal(err)
			}
			l.Entry = 0x7000 // not in any segment
			b, _ = json.Marshal(l)
			write(t, e, layoutName, b)
		}},
		{"entry is an empty directory", func(t *testing.T, e string) {
			rm(t, e, layoutName)
			rm(t, e, imageName)
		}},
		{"entry is a file", func(t *testing.T, e string) {
			if err := os.RemoveAll(e); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(e, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kernel, elf := writeKernel(t)
			var calls atomic.Int32
			c := countingCache(t.TempDir(), &calls)
			image, _, err := c.get(kernel)
			if err != nil {
				t.Fatal(err)
			}
			tt.spoil(t, filepath.Dir(image))
			image, layout, err := c.get(kernel)
			if err != nil {
				t.Fatal(err)
			}
			checkEntry(t, image, layout, elf)
			if calls.Load() != 2 {
				t.Fatalf("%d decompressions, want 2: the spoilt entry was used", calls.Load())
			}
			if _, _, err := c.get(kernel); err != nil || calls.Load() != 2 {
				t.Fatalf("the rebuilt entry is not a hit: %v, %d decompressions", err, calls.Load())
			}
			if left := leftovers(t, c.dir); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

func TestCache_Concurrent_AllSucceed(t *testing.T) {
	kernel, elf := writeKernel(t)
	var calls atomic.Int32
	c := countingCache(t.TempDir(), &calls)
	const n = 8
	var wg sync.WaitGroup
	paths := make([]string, n)
	layouts := make([]*boot.Vmlinux, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { paths[i], layouts[i], errs[i] = c.get(kernel) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if paths[i] != paths[0] {
			t.Errorf("call %d got %s, call 0 %s", i, paths[i], paths[0])
		}
		checkEntry(t, paths[i], layouts[i], elf)
	}
	if left := leftovers(t, c.dir); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	t.Logf("%d of %d calls decompressed", calls.Load(), n)
}

// A temporary directory a crash left long ago goes on the next miss; a
// recent one (another boot's work in progress) stays.
func TestCache_StaleTemporaryRemoved(t *testing.T) {
	kernel, _ := writeKernel(t)
	var calls atomic.Int32
	c := countingCache(t.TempDir(), &calls)
	stale, recent := filepath.Join(c.dir, tmpPrefix+"stale"), filepath.Join(c.dir, tmpPrefix+"recent")
	for _, d := range []string{stale, recent} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * staleAge)
	os.Chtimes(stale, old, old)
	if _, _, err := c.get(kernel); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale %s: %v", stale, err)
	}
	if _, err := os.Stat(recent); err != nil {
		t.Errorf("recent %s: %v", recent, err)
	}
}

// Errors from the bzImage are boot's, so vmm-images can flag the ones
// that mean "let the guest decompress", and nothing is cached.
func TestCache_KernelErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o644)
		return p
	}
	xz := append([]byte{0xFD, '7', 'z', 'X', 'Z', 0}, make([]byte, 64)...)
	gz := compressFor(t, CompressionGzip, testELF(t, defaultELF()))
	gz[len(gz)/2] ^= 0x55
	tests := []struct {
		name   string
		kernel string
		want   error
	}{
		{"xz", write("xz", wrapPayload(xz)), boot.ErrUnsupportedCompression},
		{"no payload", write("flat", boot.BuildBzImage(make([]byte, 0x1000), boot.BzImageOptions{})), boot.ErrNoPayload},
		{"corrupt gzip", write("corrupt", wrapPayload(gz)), boot.ErrBadPayload},
		{"not a vmlinux", write("notelf", wrapPayload(compressFor(t, CompressionGzip, pattern(0x4000, 1)))), boot.ErrNotVmlinux},
		{"not a bzImage", write("text", []byte("hello")), boot.ErrNotBzImage},
		{"missing", filepath.Join(dir, "missing"), os.ErrNotExist},
	}
	cacheDir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := Cache(tt.kernel, cacheDir); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if left := leftovers(t, filepath.Join(cacheDir, cacheSubdir)); len(left) > 0 {
		t.Errorf("cached after errors: %v", left)
	}
}

func rm(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.Remove(filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, dir, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// leftovers lists the temporary and moved-aside directories in dir.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var left []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			left = append(left, e.Name())
		}
	}
	return left
}
