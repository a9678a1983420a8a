package busybox

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
)

// refNameAnnotation tags an image in an OCI layout's index.json (image-spec
// annotations.md); `vmm run oci-layout:DIR:TAG` selects by it.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// WriteLayout writes img into the OCI image layout directory dir under
// tag, creating the layout when dir holds none. An image already tagged
// tag there is replaced; other tags are kept.
func WriteLayout(dir, tag string, img v1.Image) error {
	// oci-layout:DIR:TAG splits at the last colon and wants no slash after it.
	if tag == "" || strings.ContainsAny(tag, ":/") {
		return fmt.Errorf("write OCI layout %s: bad tag %q: want a non-empty name without ':' or '/'", dir, tag)
	}
	p, err := layout.FromPath(dir)
	if errors.Is(err, fs.ErrNotExist) {
		p, err = layout.Write(dir, empty.Index)
	}
	if err != nil {
		return fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	err = p.ReplaceImage(img, match.Name(tag),
		layout.WithAnnotations(map[string]string{refNameAnnotation: tag}),
		layout.WithPlatform(v1.Platform{OS: cf.OS, Architecture: cf.Architecture}))
	if err != nil {
		return fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	return nil
}
