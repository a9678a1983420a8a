package oci

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// Store keeps pulled images by digest in a directory (images.CacheDir()+"/oci"
// for vmm), with an index from the references users typed to manifests.
type Store struct {
	dir string
}

// Entry describes one stored reference, for `vmm images`.
type Entry struct {
	Ref     string    // the normalized reference, as Ref.String gives it
	Digest  v1.Hash   // the manifest's digest
	Size    int64     // manifest, config and layers as stored (compressed)
	Created time.Time // from the image config; zero when it has none
}

// staleAge is how old a pull's leftovers must be before Open deletes them:
// younger ones may belong to a pull still running.
const staleAge = 24 * time.Hour

// Open opens the store in dir, creating it if needed, and deletes what
// interrupted pulls left behind.
func Open(dir string) (*Store, error) {
	for _, d := range []string{filepath.Join(dir, blobsDir, "sha256"), filepath.Join(dir, tmpDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("open image store: %w", err)
		}
	}
	marker := filepath.Join(dir, layoutFile)
	if _, err := os.Stat(marker); errors.Is(err, fs.ErrNotExist) {
		if err := writeFileAtomic(marker, []byte(layoutMarker)); err != nil {
			return nil, fmt.Errorf("open image store: %w", err)
		}
	}
	removeStale(filepath.Join(dir, tmpDir), "pull-")
	removeStale(dir, ".tmp-")
	return &Store{dir: dir}, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// Get returns the image ref names: from the store when a registry
// reference was pulled before, without touching the network (as `docker
// run` does), and otherwise by pulling it. Layout directories and archives
// are read again every time, since their files may have changed; blobs the
// store has already are not copied again.
func (s *Store) Get(ctx context.Context, ref Ref, opts Options) (v1.Image, error) {
	if ref.Transport == FromRegistry {
		if img, err := s.local(ref); err == nil {
			return img, nil
		}
	}
	return s.Pull(ctx, ref, opts)
}

// Pull resolves ref again (a tag may have moved), copies the blobs the
// store lacks, checking every digest, and points ref at the result. A pull
// that fails leaves the store as it was.
func (s *Store) Pull(ctx context.Context, ref Ref, opts Options) (v1.Image, error) {
	img, err := s.pull(ctx, ref, opts)
	if err != nil {
		return nil, classify(ref, err)
	}
	return img, nil
}

func (s *Store) pull(ctx context.Context, ref Ref, opts Options) (v1.Image, error) {
	if ref.Transport == FromRegistry && ref.Name == nil {
		return nil, badRef("", errors.New("empty reference"))
	}
	src, want, err := openSource(ctx, ref, opts)
	if err != nil {
		return nil, err
	}
	st, im, err := s.fetch(ctx, ref.display(), src, want, opts.Progress)
	if err != nil {
		return nil, err
	}
	defer st.discard()
	if err := s.commit(st, ref.String(), im); err != nil {
		return nil, err
	}
	return s.Image(im.manifest.Digest)
}

// local returns ref's stored image when all its blobs are present.
func (s *Store) local(ref Ref) (v1.Image, error) {
	idx, err := readIndex(s.dir)
	if err != nil {
		return nil, err
	}
	d, ok := lookup(idx, ref.String())
	if !ok {
		return nil, fs.ErrNotExist
	}
	mf, err := s.manifest(d)
	if err != nil {
		return nil, err
	}
	for _, b := range append([]v1.Descriptor{mf.Config}, mf.Layers...) {
		if !s.hasBlob(b) {
			return nil, fs.ErrNotExist
		}
	}
	return s.Image(d.Digest)
}

// Image returns the stored image whose manifest has digest h.
func (s *Store) Image(h v1.Hash) (v1.Image, error) {
	idx, err := readIndex(s.dir)
	if err != nil {
		return nil, err
	}
	if validDigest(h) != nil || !slices.ContainsFunc(idx.Manifests, func(d v1.Descriptor) bool { return d.Digest == h }) {
		return nil, &Error{Kind: ErrNotFound, Ref: h.String(), Where: "the image store " + s.dir}
	}
	return layout.Path(s.dir).Image(h)
}

// List returns the stored references, sorted. An entry whose blobs cannot
// be read is listed with what the index knows.
func (s *Store) List() ([]Entry, error) {
	idx, err := readIndex(s.dir)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, d := range idx.Manifests {
		ref, ok := d.Annotations[refNameAnnotation]
		if !ok {
			continue
		}
		e := Entry{Ref: ref, Digest: d.Digest, Size: d.Size}
		if mf, err := s.manifest(d); err == nil {
			e.Size += mf.Config.Size
			for _, l := range mf.Layers {
				e.Size += l.Size
			}
			if cf, err := s.config(mf); err == nil {
				e.Created = cf.Created.Time
			}
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Ref, b.Ref) })
	return out, nil
}

// Remove deletes ref from the store and then every blob no remaining
// reference needs.
func (s *Store) Remove(ref Ref) error {
	return withLock(s.dir, func() error {
		idx, err := readIndex(s.dir)
		if err != nil {
			return err
		}
		keep := withoutRef(idx, ref.String())
		if len(keep) == len(idx.Manifests) {
			return &Error{Kind: ErrNotFound, Ref: ref.display(), Where: "the image store " + s.dir}
		}
		idx.Manifests = keep
		if err := writeIndex(s.dir, idx); err != nil {
			return err
		}
		return s.collect()
	})
}

func (s *Store) manifest(d v1.Descriptor) (*v1.Manifest, error) {
	b, err := s.blob(d.Digest)
	if err != nil {
		return nil, err
	}
	return v1.ParseManifest(bytes.NewReader(b))
}

func (s *Store) config(mf *v1.Manifest) (*v1.ConfigFile, error) {
	b, err := s.blob(mf.Config.Digest)
	if err != nil {
		return nil, err
	}
	return v1.ParseConfigFile(bytes.NewReader(b))
}

// removeStale deletes leftovers of interrupted pulls in dir.
func removeStale(dir, prefix string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > staleAge {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}
