package oci

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// hasBlob reports whether the store holds d's blob. Blobs were verified
// when they came in, so presence with the right size is enough.
func (s *Store) hasBlob(d v1.Descriptor) bool {
	fi, err := os.Stat(s.blobPath(d.Digest))
	return err == nil && fi.Mode().IsRegular() && fi.Size() == d.Size
}

// blobPath is where the OCI layout keeps h: blobs/ALGORITHM/HEX.
func (s *Store) blobPath(h v1.Hash) string {
	return filepath.Join(s.dir, blobsDir, h.Algorithm, h.Hex)
}

// validDigest rejects digests that could not name a blob file, such as an
// algorithm of "../..": they come from manifests we have not yet trusted.
func validDigest(h v1.Hash) error {
	want := map[string]int{"sha256": 64, "sha512": 128}[h.Algorithm]
	if want == 0 || len(h.Hex) != want || strings.Trim(h.Hex, "0123456789abcdef") != "" {
		return fmt.Errorf("unsupported digest %q", h)
	}
	return nil
}

// blob reads a stored blob whole: manifests and configs, never layers.
func (s *Store) blob(h v1.Hash) ([]byte, error) {
	if err := validDigest(h); err != nil {
		return nil, err
	}
	return os.ReadFile(s.blobPath(h))
}
