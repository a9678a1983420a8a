package rootfs

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
)

// plan is the first read: the flattened tree, and what writing it takes.
type plan struct {
	srcs       []source
	tree       *tree
	layout     layout
	layerBytes int64
}

// newPlan reads every layer's headers and applies them in order.
func newPlan(ctx context.Context, srcs []source, opts Options) (*plan, error) {
	p := &plan{srcs: srcs, tree: newTree()}
	seen := 0
	for _, s := range srcs {
		var es []entry
		n, err := s.scan(ctx, func(i int, h *tar.Header, _ io.Reader) error {
			if seen++; seen > opts.maxEntries() {
				return fmt.Errorf("more than %d entries: %w", opts.maxEntries(), ErrTooLarge)
			}
			e, err := newEntry(i, h)
			if err != nil {
				return err
			}
			if e.size > opts.maxBytes() {
				return fmt.Errorf("%q: %d bytes, more than the %d allowed: %w", e.raw, e.size, opts.maxBytes(), ErrTooLarge)
			}
			es = append(es, e)
			return nil
		})
		if err != nil {
			return nil, err
		}
		if err := p.tree.apply(es, s.index); err != nil {
			return nil, s.errorf("%w", err)
		}
		p.layerBytes += n
	}
	p.layout = p.tree.layout()
	if d := p.layout.dataBytes; d > opts.maxBytes() {
		return nil, fmt.Errorf("flattened tree holds %d bytes of files, more than the %d allowed: %w", d, opts.maxBytes(), ErrTooLarge)
	}
	return p, nil
}

func (p *plan) stats() Stats {
	return Stats{
		Layers:     len(p.srcs),
		LayerBytes: p.layerBytes,
		Entries:    p.layout.entries(),
		DataBytes:  p.layout.dataBytes,
	}
}
