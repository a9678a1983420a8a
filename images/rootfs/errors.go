package rootfs

import (
	"errors"
	"fmt"
)

// Conditions a caller may branch on; every one reaches it wrapped in a
// LayerError that names the layer it came from.
var (
	// ErrMalformed: the layer is not a tar stream we can trust, or an entry
	// in it is one a Linux file system cannot hold (NUL in a name, a name
	// longer than PATH_MAX, an empty symlink target, an unknown type).
	ErrMalformed = errors.New("malformed layer")
	// ErrPathEscape: an entry or hardlink target names a path outside the
	// root ("../../etc/passwd").
	ErrPathEscape = errors.New("path escapes the root")
	// ErrHardlink: a hardlink points at nothing, at a directory, or at a
	// path whose parent cannot be resolved inside the tree.
	ErrHardlink = errors.New("bad hardlink")
	// ErrTooLarge: the flattened tree would exceed Options.MaxBytes or
	// Options.MaxEntries.
	ErrTooLarge = errors.New("image too large")
	// ErrDiffID: a layer's uncompressed content does not hash to the diff_id
	// the image names, so it must not be cached under that image's key.
	ErrDiffID = errors.New("layer content does not match its diff_id")
)

// LayerError names the layer a flattening failure came from.
type LayerError struct {
	Index  int    // position in the image, 0 is the base layer
	Digest string // the layer's (compressed) digest, when known
	Err    error
}

func (e *LayerError) Error() string {
	if e.Digest == "" {
		return fmt.Sprintf("layer %d: %v", e.Index, e.Err)
	}
	return fmt.Sprintf("layer %d %s: %v", e.Index, e.Digest, e.Err)
}

func (e *LayerError) Unwrap() error { return e.Err }
