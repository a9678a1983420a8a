package oci

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// refNameAnnotation tags an image in an OCI layout's index.json (image-spec
// annotations.md).
const refNameAnnotation = "org.opencontainers.image.ref.name"

// openSource opens the image ref names without copying it. want, when not
// nil, is the manifest digest the source vouches for; the copy into the
// store checks the manifest against it. A registry's digests are checked
// as they arrive (verifyTransport).
func openSource(ctx context.Context, ref Ref, opts Options) (img v1.Image, want *v1.Hash, err error) {
	switch ref.Transport {
	case FromLayout:
		return openLayout(ref, opts.platform())
	case FromArchive:
		img, err := openArchive(ref)
		return img, nil, err
	}
	img, err = remote.Image(ref.Name, opts.remoteOptions(ctx)...)
	return img, nil, err
}

func openLayout(ref Ref, p v1.Platform) (v1.Image, *v1.Hash, error) {
	if err := statSource(ref, true); err != nil {
		return nil, nil, err
	}
	if _, err := os.Stat(filepath.Join(ref.Path, "index.json")); err != nil {
		return nil, nil, &Error{Kind: ErrNoSource, Ref: ref.display(), Where: ref.where(),
			Err: errors.New("no index.json: not an OCI image layout")}
	}
	idx, err := layout.ImageIndexFromPath(ref.Path)
	if err != nil {
		return nil, nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", ref.where(), err)
	}
	var tagged []v1.Descriptor
	for _, d := range im.Manifests {
		if ref.Tag == "" || d.Annotations[refNameAnnotation] == ref.Tag {
			tagged = append(tagged, d)
		}
	}
	if len(tagged) == 0 {
		return nil, nil, &Error{Kind: ErrNotFound, Ref: ref.display(), Where: ref.where()}
	}
	return imageFor(idx, tagged, p)
}

// imageFor returns the first image among descs for platform p, looking
// inside nested indexes (multi-platform images).
func imageFor(idx v1.ImageIndex, descs []v1.Descriptor, p v1.Platform) (v1.Image, *v1.Hash, error) {
	for _, d := range descs {
		if d.Platform != nil && !d.Platform.Satisfies(p) {
			continue
		}
		switch {
		case d.MediaType.IsImage():
			img, err := idx.Image(d.Digest)
			return img, &d.Digest, err
		case d.MediaType.IsIndex():
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return nil, nil, err
			}
			// layout does not check an index blob against its digest.
			raw, err := child.RawManifest()
			if err != nil {
				return nil, nil, err
			}
			if err := checkDigest(raw, d.Digest); err != nil {
				return nil, nil, err
			}
			im, err := child.IndexManifest()
			if err != nil {
				return nil, nil, err
			}
			return imageFor(child, im.Manifests, p)
		}
	}
	return nil, nil, fmt.Errorf("no image for platform %s", p)
}

func openArchive(ref Ref) (v1.Image, error) {
	if err := statSource(ref, false); err != nil {
		return nil, err
	}
	// A docker save tarball holds no digests of its own to check against:
	// tarball computes them from the content.
	return tarball.ImageFromPath(ref.Path, nil)
}

// statSource reports a missing or mistyped layout directory or archive as
// ErrNoSource.
func statSource(ref Ref, wantDir bool) error {
	fi, err := os.Stat(ref.Path)
	if err == nil && fi.IsDir() != wantDir {
		err = errors.New("is a directory")
		if wantDir {
			err = errors.New("not a directory")
		}
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			err = fs.ErrNotExist // the message names the path already
		}
		return &Error{Kind: ErrNoSource, Ref: ref.display(), Where: ref.where(), Err: err}
	}
	return nil
}
