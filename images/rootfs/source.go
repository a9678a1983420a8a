package rootfs

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// source is one layer's uncompressed tar. Flatten reads it twice, once to
// plan the tree and once to copy the data that survives, so nothing is
// spooled to disk; both reads check the diff_id.
type source struct {
	index  int
	digest string  // for errors
	diffID v1.Hash // zero: unchecked (tests and fuzzing only)
	open   func() (io.ReadCloser, error)
}

// layerSources describes layers for reading, base first. diffIDs, when it
// has one per layer (an image config's), gives their
// diff_ids; otherwise each layer is asked, which may read it whole.
func layerSources(layers []v1.Layer, diffIDs []v1.Hash) ([]source, error) {
	srcs := make([]source, len(layers))
	for i, l := range layers {
		s := source{index: i, open: l.Uncompressed}
		d, err := l.Digest()
		if err != nil {
			return nil, &LayerError{Index: i, Err: fmt.Errorf("digest: %w", err)}
		}
		s.digest = d.String()
		if len(diffIDs) == len(layers) {
			s.diffID = diffIDs[i]
		} else if s.diffID, err = l.DiffID(); err != nil {
			return nil, s.errorf("diff_id: %w", err)
		}
		srcs[i] = s
	}
	return srcs, nil
}

func (s source) errorf(format string, a ...any) error {
	return &LayerError{Index: s.index, Digest: s.digest, Err: fmt.Errorf(format, a...)}
}

// errStop, returned by a scan callback, skips the rest of the entries; the
// stream is still read to its end so that its diff_id is checked.
var errStop = errors.New("stop scanning")

// scan reads the layer's tar, calling fn for each header with the entry's
// data, and returns how many uncompressed bytes the layer holds.
func (s source) scan(ctx context.Context, fn func(ordinal int, h *tar.Header, data io.Reader) error) (int64, error) {
	rc, err := s.open()
	if err != nil {
		return 0, s.errorf("open: %w", err)
	}
	defer rc.Close()
	sum, err := newHash(s.diffID)
	if err != nil {
		return 0, s.errorf("%w", err)
	}
	cr := &countingReader{r: io.TeeReader(rc, sum)}
	tr := tar.NewReader(cr)
	for i := 0; ; i++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if cr.err != nil && errors.Is(err, cr.err) {
				return 0, s.errorf("read: %w", err)
			}
			return 0, s.errorf("tar entry %d: %w: %w", i, ErrMalformed, err)
		}
		if err := fn(i, h, tr); err == errStop {
			break
		} else if err != nil {
			return 0, s.errorf("%w", err)
		}
	}
	// Trailing padding after the end-of-archive blocks is part of the diff_id.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return 0, s.errorf("read: %w", err)
	}
	if s.diffID.Hex != "" {
		if got := hex.EncodeToString(sum.Sum(nil)); got != s.diffID.Hex {
			return 0, s.errorf("got %s:%s, want %s: %w", s.diffID.Algorithm, got, s.diffID, ErrDiffID)
		}
	}
	return cr.n, nil
}

func newHash(h v1.Hash) (hash.Hash, error) {
	switch h.Algorithm {
	case "sha256", "":
		return sha256.New(), nil
	case "sha512":
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("diff_id %s: unsupported algorithm", h)
}

// countingReader counts bytes and remembers the source's own error, to tell
// an I/O failure from a malformed archive.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}
