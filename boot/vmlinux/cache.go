package vmlinux

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vmm-dev/vmm/boot"
)

// The cache is content-keyed: <cacheDir>/vmlinux/<sha256 of the bzImage>/
// holds the image and its layout. An entry appears whole, by renaming a
// finished temporary directory into place, and is checked on every hit.
const (
	cacheSubdir = "vmlinux"
	imageName   = "vmlinux"
	layoutName  = "layout.json"
	tmpPrefix   = ".tmp-" // entries being written, or left by a crash
	oldPrefix   = ".old-" // corrupt entries moved aside to be removed
	// staleAge is when a leftover temporary directory is surely not
	// another boot's work in progress.
	staleAge = time.Hour
	// maxLayoutSize bounds the layout file read back: a real one is a few
	// hundred bytes.
	maxLayoutSize = 64 << 10
)

// layoutFile is the layout.json beside a cached image.
type layoutFile struct {
	ImageSize int64
	Entry     uint64
	Segments  []boot.VmlinuxSegment
	// CRC32C is the image's checksum (Castagnoli), so a hit never trusts
	// an image that changed on disk. It costs a few milliseconds where
	// SHA-256 would cost tens.
	CRC32C uint32
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CacheError says the cache could not keep a decompressed kernel (a
// read-only or full disk): the kernel itself is fine, and its Temporary
// writes what was decompressed somewhere else.
type CacheError struct {
	Dir string
	Err error

	image  []byte
	layout *boot.Vmlinux
}

// Temporary writes the kernel the cache could not keep into a new file in
// dir, as the package's Temporary does, without decompressing it again.
func (e *CacheError) Temporary(dir string) (imagePath string, layout *boot.Vmlinux, err error) {
	return writeTemporary(dir, e.image, e.layout)
}

func (e *CacheError) Error() string {
	return fmt.Sprintf("cache the decompressed kernel in %s: %v", e.Dir, e.Err)
}

func (e *CacheError) Unwrap() error { return e.Err }

// Temporary is Cache without the cache: it decompresses the bzImage at
// kernelPath into a new file in dir, which the caller removes once it has
// the file open. It is for when the cache cannot be written.
func Temporary(kernelPath, dir string) (imagePath string, layout *boot.Vmlinux, err error) {
	k, err := os.Open(kernelPath)
	if err != nil {
		return "", nil, err
	}
	defer k.Close()
	st, err := k.Stat()
	if err != nil {
		return "", nil, err
	}
	image, err := Extract(k, st.Size())
	if err != nil {
		return "", nil, err
	}
	v, err := Parse(image)
	if err != nil {
		return "", nil, err
	}
	return writeTemporary(dir, image, v)
}

// writeTemporary writes image to a new file in dir and returns its path and
// v without an Image: the caller opens the file (and removes it).
func writeTemporary(dir string, image []byte, v *boot.Vmlinux) (string, *boot.Vmlinux, error) {
	f, err := os.CreateTemp(dir, "vmm-vmlinux-")
	if err != nil {
		return "", nil, fmt.Errorf("write the decompressed kernel: %w", err)
	}
	_, err = f.Write(image)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", nil, fmt.Errorf("write the decompressed kernel: %w", err)
	}
	v.Image = nil
	return f.Name(), v, nil
}

// Cache returns the decompressed kernel of the bzImage at kernelPath, from
// the cache under cacheDir (images.CacheDir's, normally), decompressing and
// adding it when it is not there: imagePath is the cached vmlinux and
// layout its segments and entry point. The layout's Image is nil: the VM
// process opens imagePath and checks the layout again (boot.Load).
//
// A hit costs a SHA-256 of the bzImage and a checksum of the image; an
// entry that is partial or corrupt is rebuilt, never used. Concurrent
// calls, in any processes, may both decompress; both succeed. Errors from
// the bzImage itself are boot's: boot.ErrUnsupportedCompression and
// boot.ErrNoPayload mean the guest must decompress the kernel itself.
func Cache(kernelPath, cacheDir string) (imagePath string, layout *boot.Vmlinux, err error) {
	c := cache{dir: filepath.Join(cacheDir, cacheSubdir), extract: Extract}
	return c.get(kernelPath)
}

// cache is Cache with the decompressor as a parameter, so tests can count
// its calls.
type cache struct {
	dir     string
	extract func(io.ReaderAt, int64) ([]byte, error)
}

func (c cache) get(kernelPath string) (string, *boot.Vmlinux, error) {
	k, err := os.Open(kernelPath)
	if err != nil {
		return "", nil, err
	}
	defer k.Close()
	h := sha256.New()
	size, err := io.Copy(h, k)
	if err != nil {
		return "", nil, fmt.Errorf("read kernel: %w", err)
	}
	key := hex.EncodeToString(h.Sum(nil))
	entry := filepath.Join(c.dir, key)
	if v, err := readEntry(entry); err == nil {
		return filepath.Join(entry, imageName), v, nil
	}
	image, err := c.extract(k, size)
	if err != nil {
		return "", nil, err
	}
	v, err := Parse(image)
	if err != nil {
		return "", nil, err
	}
	if err := c.publish(entry, key, image, v); err != nil {
		return "", nil, &CacheError{Dir: c.dir, Err: err, image: image, layout: v}
	}
	v.Image = nil
	return filepath.Join(entry, imageName), v, nil
}

// readEntry returns the layout of the entry in dir if the entry is whole:
// a layout that passes boot's check against the image file as it is, and
// an image whose size and checksum are the layout's.
func readEntry(dir string) (*boot.Vmlinux, error) {
	b, err := os.ReadFile(filepath.Join(dir, layoutName))
	if err != nil {
		return nil, err
	}
	if len(b) > maxLayoutSize {
		return nil, errors.New("layout file too large")
	}
	var l layoutFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(dir, imageName))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() != l.ImageSize {
		return nil, fmt.Errorf("image is %d bytes, the layout says %d", st.Size(), l.ImageSize)
	}
	v := &boot.Vmlinux{Image: f, ImageSize: st.Size(), Entry: l.Entry, Segments: l.Segments}
	if err := v.Check(boot.NoRAMLimit); err != nil {
		return nil, err
	}
	sum := crc32.New(castagnoli)
	if _, err := io.Copy(sum, f); err != nil {
		return nil, err
	}
	if sum.Sum32() != l.CRC32C {
		return nil, errors.New("image checksum differs from the layout's")
	}
	v.Image = nil
	return v, nil
}

// publish writes image and its layout to a temporary directory and renames
// it to entry. If an entry is there already, a whole one is kept (another
// boot made the same bytes) and a corrupt one is moved aside and replaced.
func (c cache) publish(entry, key string, image []byte, v *boot.Vmlinux) error {
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return err
	}
	c.removeStale()
	tmp, err := os.MkdirTemp(c.dir, tmpPrefix+key[:16]+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	layout, err := json.Marshal(layoutFile{ImageSize: v.ImageSize, Entry: v.Entry, Segments: v.Segments,
		CRC32C: crc32.Checksum(image, castagnoli)})
	if err != nil {
		return err
	}
	if err := writeSynced(filepath.Join(tmp, imageName), image); err != nil {
		return err
	}
	if err := writeSynced(filepath.Join(tmp, layoutName), layout); err != nil {
		return err
	}
	// The directory must be readable by other users' VMs like the rest
	// of the cache; MkdirTemp made it 0700.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if os.Rename(tmp, entry) == nil {
		return nil
	}
	if _, err := readEntry(entry); err == nil {
		return nil
	}
	// Move the corrupt entry aside in one step rather than removing it in
	// place, so a whole entry another boot renames in meanwhile is never
	// deleted file by file.
	old, err := os.MkdirTemp(c.dir, oldPrefix+key[:16]+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(old)
	if err := os.Rename(entry, filepath.Join(old, "entry")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Rename(tmp, entry); err != nil {
		if _, rerr := readEntry(entry); rerr == nil {
			return nil
		}
		return err
	}
	return nil
}

// writeSynced writes a file and flushes it to disk, so a crash after the
// rename cannot leave an entry whose files are empty.
func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// removeStale removes temporary and moved-aside directories older than
// staleAge, which a crashed or killed vmm-images left behind.
func (c cache) removeStale() {
	ents, err := os.ReadDir(c.dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), tmpPrefix) && !strings.HasPrefix(e.Name(), oldPrefix) {
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > staleAge {
			os.RemoveAll(filepath.Join(c.dir, e.Name()))
		}
	}
}
