package oci

import (
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// commit moves the staged blobs into the store and points ref at the
// image, under the store's lock so that a concurrent Remove cannot collect
// blobs in between.
func (s *Store) commit(st *staging, ref string, im image) error {
	return withLock(s.dir, func() error {
		idx, err := readIndex(s.dir)
		if err != nil {
			return err
		}
		old, retag := lookup(idx, ref)
		if err := s.install(st, idx, ref, im); err != nil {
			s.collect() // blobs already moved in are unreferenced
			return err
		}
		if retag && old.Digest != im.manifest.Digest {
			// The tag moved; nothing lists the old image any more, so
			// its blobs would linger unseen. Failing here loses nothing.
			s.collect()
		}
		return nil
	})
}

// install moves the staged blobs into blobs/ and writes an index with ref
// pointing at the image. The caller holds the lock.
func (s *Store) install(st *staging, idx *v1.IndexManifest, ref string, im image) error {
	for _, h := range st.blobs {
		dst := s.blobPath(h)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.Rename(st.path(h), dst); err != nil {
			return fmt.Errorf("store blob %s: %w", h, err)
		}
	}
	// A blob fetch skipped as present may have been collected since.
	for _, b := range append(im.blobs, im.manifest) {
		if !s.hasBlob(b) {
			return fmt.Errorf("blob %s was removed from the image store during the pull; pull again", b.Digest)
		}
	}
	d := im.manifest
	d.Annotations = map[string]string{refNameAnnotation: ref}
	idx.Manifests = append(withoutRef(idx, ref), d)
	return writeIndex(s.dir, idx)
}
