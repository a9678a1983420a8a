package rootfs

import (
	"fmt"
	"path"
	"strings"
)

const (
	// maxPath is PATH_MAX less its NUL: docker could not create a longer
	// name and the guest could not open one, so such an entry is malformed.
	maxPath = 4095
	// maxName is NAME_MAX, the longest component ext4 can hold.
	maxName = 255
)

// splitPath confines a tar name to the root and returns its components; nil
// means the root itself. Like docker's extraction, leading slashes re-root
// the path ("/abs/path" is "abs/path"), "." and ".." are resolved lexically,
// and a path that would climb above the root is rejected, not clamped, since
// a layer that tries it is broken or hostile.
func splitPath(name string) ([]string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return nil, fmt.Errorf("%q: NUL in name: %w", name, ErrMalformed)
	}
	if len(name) > maxPath {
		return nil, fmt.Errorf("%.64q...: name longer than %d bytes: %w", name, maxPath, ErrMalformed)
	}
	p := path.Clean(strings.TrimLeft(name, "/"))
	if p == ".." || strings.HasPrefix(p, "../") {
		return nil, fmt.Errorf("%q: %w", name, ErrPathEscape)
	}
	if p == "." {
		return nil, nil
	}
	parts := strings.Split(p, "/")
	for _, c := range parts {
		if len(c) > maxName {
			return nil, fmt.Errorf("%q: component longer than %d bytes: %w", name, maxName, ErrMalformed)
		}
	}
	return parts, nil
}
