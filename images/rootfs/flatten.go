package rootfs

import (
	"context"
	"io"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Stats describes a flattening or a build.
type Stats struct {
	Layers     int           // layers in the image
	LayerBytes int64         // their uncompressed tar bytes, all together
	Entries    int           // entries in the flattened tree, the root and hardlinks included
	DataBytes  int64         // regular-file bytes in the flattened tree, each inode once
	DiskBytes  int64         // size of the ext4 image (Build only)
	Duration   time.Duration // time Build took (Build only)
	Cached     bool          // Build found the disk already built; only DiskBytes and Duration are set
}

// Flatten applies layers, base first, and writes the resulting tree to w as
// one tar stream with no whiteouts, each path once, every path confined to
// the root and every parent an explicit directory ahead of its contents.
// Each layer is read once to plan, and again if it holds file data that
// survives, to copy it; every read is checked against the diff_id.
// On error, what was written to w is incomplete and must be discarded.
func Flatten(ctx context.Context, layers []v1.Layer, w io.Writer, opts Options) (Stats, error) {
	srcs, err := layerSources(layers, nil)
	if err != nil {
		return Stats{}, err
	}
	return flatten(ctx, srcs, w, opts)
}

func flatten(ctx context.Context, srcs []source, w io.Writer, opts Options) (Stats, error) {
	p, err := newPlan(ctx, srcs, opts)
	if err != nil {
		return Stats{}, err
	}
	return p.stats(), p.write(ctx, w)
}
