package oci

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The store is an OCI image layout, so crane and skopeo can read it too:
//
//	oci-layout          the layout marker
//	index.json          one descriptor per reference, its
//	                    org.opencontainers.image.ref.name the normalized ref
//	blobs/sha256/<hex>  manifests, configs and layers
//	tmp/pull-*          blobs of pulls in progress, moved into blobs/ whole
//	lock                flock'd while index.json changes or blobs are collected
//
// index.json only ever changes by rename, so a reader without the lock
// sees the old index or the new one.
const (
	indexFile  = "index.json"
	layoutFile = "oci-layout"
	blobsDir   = "blobs"
	tmpDir     = "tmp"
	lockFile   = "lock"

	layoutMarker = `{"imageLayoutVersion":"1.0.0"}`
)

// readIndex reads the store's index; a store nobody has pulled into yet
// has none.
func readIndex(dir string) (*v1.IndexManifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, indexFile))
	if errors.Is(err, fs.ErrNotExist) {
		return &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read image store index: %w", err)
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("read image store index %s: %w", filepath.Join(dir, indexFile), err)
	}
	return im, nil
}

func writeIndex(dir string, im *v1.IndexManifest) error {
	b, err := json.MarshalIndent(im, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, indexFile), append(b, '\n'))
}

// lookup returns the descriptor stored for the normalized reference ref.
func lookup(im *v1.IndexManifest, ref string) (v1.Descriptor, bool) {
	for _, d := range im.Manifests {
		if d.Annotations[refNameAnnotation] == ref {
			return d, true
		}
	}
	return v1.Descriptor{}, false
}

// withoutRef returns the index's descriptors except those for ref.
func withoutRef(im *v1.IndexManifest, ref string) []v1.Descriptor {
	var keep []v1.Descriptor
	for _, d := range im.Manifests {
		if d.Annotations[refNameAnnotation] != ref {
			keep = append(keep, d)
		}
	}
	return keep
}

// withLock runs fn holding the store's lock. flock excludes other processes
// and, since each call opens the file anew, other goroutines too.
func withLock(dir string, fn func() error) error {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("lock image store: %w", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock image store: %w", err)
	}
	return fn() // closing f releases the lock
}

// writeFileAtomic writes data to path through a synced temporary file in
// the same directory and a rename.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr, os.Chmod(f.Name(), 0o644)); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
