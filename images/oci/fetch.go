package oci

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// staging holds the blobs of one pull, each verified, until the pull is
// complete and commit moves them into the store. Until then nothing in the
// store has changed, so a failed pull only has to delete its staging dir.
type staging struct {
	dir   string
	blobs []v1.Hash
}

// image is what a pull stores: the manifest's descriptor and every blob
// the manifest names.
type image struct {
	manifest v1.Descriptor
	blobs    []v1.Descriptor // config, then layers
}

// fetch copies into a new staging dir the blobs of img that the store
// lacks, checking each against its digest. want, when not nil, is the
// digest the manifest must have.
func (s *Store) fetch(ctx context.Context, label string, img v1.Image, want *v1.Hash, progress io.Writer) (*staging, image, error) {
	raw, m, err := readManifest(img, want)
	if err != nil {
		return nil, image{}, err
	}
	mf, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, image{}, fmt.Errorf("parse manifest %s: %w", m.Digest, err)
	}
	im := image{manifest: m, blobs: append([]v1.Descriptor{mf.Config}, mf.Layers...)}
	for _, b := range im.blobs {
		if err := validDigest(b.Digest); err != nil {
			return nil, image{}, fmt.Errorf("manifest %s: %w", m.Digest, err)
		}
	}

	dir, err := os.MkdirTemp(filepath.Join(s.dir, tmpDir), "pull-")
	if err != nil {
		return nil, image{}, fmt.Errorf("create image store staging: %w", err)
	}
	st := &staging{dir: dir}
	if err := st.fill(ctx, s, img, mf, im, raw, newProgressBar(progress, label, s.missingSize(im.blobs))); err != nil {
		st.discard()
		return nil, image{}, err
	}
	return st, im, nil
}

// readManifest returns img's manifest and its descriptor, the digest
// computed from the bytes themselves.
func readManifest(img v1.Image, want *v1.Hash) ([]byte, v1.Descriptor, error) {
	raw, err := img.RawManifest()
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	if want != nil {
		if err := checkDigest(raw, *want); err != nil {
			return nil, v1.Descriptor{}, err
		}
	}
	d, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	if !mt.IsImage() {
		// Some registries send a wrong Content-Type; the manifest says.
		mf, perr := v1.ParseManifest(bytes.NewReader(raw))
		if perr != nil || !mf.MediaType.IsImage() {
			return nil, v1.Descriptor{}, fmt.Errorf("manifest %s is a %q, not an image", d, mt)
		}
		mt = mf.MediaType
	}
	return raw, v1.Descriptor{MediaType: mt, Digest: d, Size: int64(len(raw))}, nil
}

func (st *staging) fill(ctx context.Context, s *Store, img v1.Image, mf *v1.Manifest, im image, raw []byte, bar *progressBar) error {
	defer bar.finish()
	seen := map[v1.Hash]bool{}
	for _, b := range im.blobs {
		if seen[b.Digest] || s.hasBlob(b) {
			continue
		}
		seen[b.Digest] = true
		if err := st.add(ctx, b, func() (io.ReadCloser, error) { return openBlob(img, mf, b.Digest) }, bar); err != nil {
			return err
		}
	}
	if s.hasBlob(im.manifest) {
		return nil
	}
	return st.add(ctx, im.manifest, func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil }, nil)
}

func openBlob(img v1.Image, mf *v1.Manifest, h v1.Hash) (io.ReadCloser, error) {
	if h == mf.Config.Digest {
		b, err := img.RawConfigFile()
		if err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	l, err := img.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	return l.Compressed()
}

// add copies one blob into the staging dir through a verifier.
func (st *staging) add(ctx context.Context, d v1.Descriptor, open func() (io.ReadCloser, error), bar *progressBar) error {
	rc, err := open()
	if err != nil {
		return fmt.Errorf("fetch blob %s: %w", d.Digest, err)
	}
	defer rc.Close()
	v, err := newVerifier(ctxReader{ctx, rc}, d.Digest, d.Size)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(st.path(d.Digest), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("stage blob %s: %w", d.Digest, err)
	}
	_, cerr := io.CopyBuffer(io.MultiWriter(f, bar), v, make([]byte, 256<<10))
	if cerr == nil && !v.ok {
		cerr = v.sizeError()
	}
	if err := errors.Join(cerr, f.Sync(), f.Close()); err != nil {
		return fmt.Errorf("fetch blob %s: %w", d.Digest, err)
	}
	st.blobs = append(st.blobs, d.Digest)
	return nil
}

func (st *staging) path(h v1.Hash) string {
	return filepath.Join(st.dir, h.Algorithm+"-"+h.Hex)
}

func (st *staging) discard() { os.RemoveAll(st.dir) }

// missingSize is how many bytes of blobs the store lacks: the progress
// bar's total.
func (s *Store) missingSize(blobs []v1.Descriptor) int64 {
	var n int64
	seen := map[v1.Hash]bool{}
	for _, b := range blobs {
		if !seen[b.Digest] && !s.hasBlob(b) {
			n += b.Size
		}
		seen[b.Digest] = true
	}
	return n
}

// ctxReader stops a copy when ctx is done; local sources ignore contexts.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
