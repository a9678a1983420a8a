package oci

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// collect deletes every blob that no entry of the index needs. It runs
// under the store's lock, so no pull commits meanwhile; pulls in progress
// keep their blobs in tmp/, which collect does not look at.
func (s *Store) collect() error {
	idx, err := readIndex(s.dir)
	if err != nil {
		return err
	}
	live := map[v1.Hash]bool{}
	for _, d := range idx.Manifests {
		if err := s.mark(d, live); err != nil {
			// Deleting on a partial view could lose a live blob.
			return fmt.Errorf("collect unused image blobs: %w", err)
		}
	}
	algs, err := os.ReadDir(filepath.Join(s.dir, blobsDir))
	if err != nil {
		return fmt.Errorf("collect unused image blobs: %w", err)
	}
	var errs []error
	for _, a := range algs {
		files, err := os.ReadDir(filepath.Join(s.dir, blobsDir, a.Name()))
		if err != nil {
			continue // not a directory of blobs
		}
		for _, f := range files {
			h := v1.Hash{Algorithm: a.Name(), Hex: f.Name()}
			if validDigest(h) != nil || live[h] {
				continue
			}
			if err := os.Remove(s.blobPath(h)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// mark adds d and every blob it names to live. A missing manifest marks
// nothing: that entry is broken already.
func (s *Store) mark(d v1.Descriptor, live map[v1.Hash]bool) error {
	if live[d.Digest] {
		return nil
	}
	live[d.Digest] = true
	if !d.MediaType.IsImage() && !d.MediaType.IsIndex() {
		return nil
	}
	b, err := s.blob(d.Digest)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if d.MediaType.IsIndex() {
		im, err := v1.ParseIndexManifest(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("index %s: %w", d.Digest, err)
		}
		for _, c := range im.Manifests {
			if err := s.mark(c, live); err != nil {
				return err
			}
		}
		return nil
	}
	mf, err := v1.ParseManifest(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("manifest %s: %w", d.Digest, err)
	}
	live[mf.Config.Digest] = true
	for _, l := range mf.Layers {
		live[l.Digest] = true
	}
	return nil
}
