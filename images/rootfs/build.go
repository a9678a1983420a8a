package rootfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/Microsoft/hcsshim/ext4/tar2ext4"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Build returns the path of img's root file system as a read-only ext4
// disk, cacheDir/rootfs/ext4-v1/<chain ID>.ext4 (see chainID), building it
// the first time. The disk is written to a temporary file and renamed into
// place, so a reader sees all of it or nothing; an flock makes concurrent
// builders of one image, in any process, build it once. cacheDir is the vmm
// cache root, images.CacheDir().
func Build(ctx context.Context, img v1.Image, cacheDir string, opts Options) (string, Stats, error) {
	start := time.Now()
	layers, err := img.Layers()
	if err != nil {
		return "", Stats{}, fmt.Errorf("rootfs: list layers: %w", err)
	}
	srcs, err := layerSources(layers, configDiffIDs(img))
	if err != nil {
		return "", Stats{}, fmt.Errorf("rootfs: %w", err)
	}
	diffIDs := make([]v1.Hash, len(srcs))
	for i, s := range srcs {
		diffIDs[i] = s.diffID
	}
	key, err := chainID(diffIDs)
	if err != nil {
		return "", Stats{}, fmt.Errorf("rootfs: %w", err)
	}
	dir := filepath.Join(cacheDir, "rootfs", diskFormat)
	path := filepath.Join(dir, key.Algorithm+"-"+key.Hex+".ext4")
	if size, ok := cached(path); ok {
		return path, Stats{DiskBytes: size, Duration: time.Since(start), Cached: true}, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", Stats{}, fmt.Errorf("rootfs: %w", err)
	}
	unlock, err := lockFile(ctx, path+".lock")
	if err != nil {
		return "", Stats{}, fmt.Errorf("rootfs: %w", err)
	}
	defer unlock()
	if size, ok := cached(path); ok {
		return path, Stats{DiskBytes: size, Duration: time.Since(start), Cached: true}, nil
	}
	removeStale(path)
	st, err := writeDisk(ctx, srcs, path, opts)
	if err != nil {
		return "", Stats{}, fmt.Errorf("build rootfs %s: %w", key, err)
	}
	st.Duration = time.Since(start)
	return path, st, nil
}

// configDiffIDs returns the diff_ids the image's config lists, or nil.
// They name the cache entry without reading a layer: asking a compressed
// layer for its diff_id decompresses it whole (for every run of a cached
// image). A build still checks every layer against its diff_id as it
// reads it, so a config that lies fails there.
func configDiffIDs(img v1.Image) []v1.Hash {
	cf, err := img.ConfigFile()
	if err != nil || cf == nil {
		return nil
	}
	return cf.RootFS.DiffIDs
}

// cached reports whether the disk exists; only complete disks are ever
// renamed into place.
func cached(path string) (int64, bool) {
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return 0, false
	}
	return fi.Size(), true
}

func tmpPattern(path string) string { return ".tmp-" + filepath.Base(path) + "-*" }

// removeStale deletes temporary files a killed build left behind; the
// caller holds the lock, so no live build owns them.
func removeStale(path string) {
	stale, _ := filepath.Glob(filepath.Join(filepath.Dir(path), tmpPattern(path)))
	for _, f := range stale {
		os.Remove(f)
	}
}

// writeDisk flattens srcs into an ext4 image and renames it to path.
func writeDisk(ctx context.Context, srcs []source, path string, opts Options) (Stats, error) {
	p, err := newPlan(ctx, srcs, opts)
	if err != nil {
		return Stats{}, err
	}
	f, err := os.CreateTemp(filepath.Dir(path), tmpPattern(path))
	if err != nil {
		return Stats{}, err
	}
	tmp := f.Name()
	defer func() {
		f.Close()
		os.Remove(tmp) // fails harmlessly once renamed
	}()
	if err := convert(ctx, p, f); err != nil {
		return Stats{}, err
	}
	if err := padInodeBitmaps(f); err != nil {
		return Stats{}, err
	}
	fi, err := f.Stat()
	if err != nil {
		return Stats{}, err
	}
	// Sync before the rename, so a crash cannot leave a complete-looking
	// name over incomplete data.
	if err := errors.Join(f.Sync(), f.Close(), os.Chmod(tmp, 0o444)); err != nil {
		return Stats{}, fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return Stats{}, err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	st := p.stats()
	st.DiskBytes = fi.Size()
	return st, nil
}

// convert streams the plan's tar into tar2ext4 through a pipe.
//
// InlineData puts files up to ~136 bytes in their inodes: smaller disks, and
// the guest kernel mounts inline_data read-only fine (DAX, which it rules
// out, is not used). tar2ext4 writes only the blocks it fills and marks the
// file system read-only (RO_COMPAT_READONLY), so there is no free space to
// reserve: the guest writes to its overlay's upper layer.
func convert(ctx context.Context, p *plan, f *os.File) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := p.write(ctx, pw)
		pw.CloseWithError(err)
		done <- err
	}()
	cerr := tar2ext4.ConvertTarToExt4(pr, f, tar2ext4.InlineData, tar2ext4.MaximumDiskSize(maxDiskSize(p.layout)))
	if cerr != nil {
		cancel()
		pr.CloseWithError(cerr)
	} else {
		io.Copy(io.Discard, pr) // let the writer finish and report
	}
	werr := <-done
	switch {
	case werr != nil && (cerr == nil || errors.Is(cerr, werr)):
		return werr // the writer failed first; tar2ext4 only saw its error
	case cerr != nil:
		return fmt.Errorf("write ext4: %w", cerr)
	}
	return nil
}

// maxDiskSize bounds what tar2ext4 may write for l: every data block plus
// an extent block per file; per inode a table slot and a block (directory,
// xattrs or a long symlink target); per name a directory entry; then the
// superblock, group descriptors and bitmaps. It is a cap, not a size:
// tar2ext4 fails past it and reserves group descriptors for it (a 4 KiB
// block per 16 GiB), so generosity costs nothing.
func maxDiskSize(l layout) int64 {
	const block, inodeSize, dirent = 4096, 256, 8 + maxName + 1
	n := int64(64 << 20)
	for _, r := range l.data {
		n += (r.ino.size+block-1)/block*block + block
	}
	n += int64(len(l.meta)+len(l.data)) * (inodeSize + block)
	n += int64(l.entries()) * dirent
	return n + n/64
}
