package rootfs

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
)

// record is one entry of the flattened tar.
type record struct {
	name   string // relative and clean; directories end in "/", the root is "./"
	ino    *inode
	linkTo string // hardlinks only: the name that carries the inode
}

// layout orders the flattened tar so that any reader, tar2ext4 included,
// meets a directory before what is in it and a hardlink's target before
// the link: directories and data-less entries first, depth first; then
// files with data, in the order their layers hold them, so a second read
// copies them without seeking; then every further name of an inode, as a
// hardlink to the first.
type layout struct {
	meta, data, links []record
	dataBytes         int64
}

func (l *layout) entries() int { return len(l.meta) + len(l.data) + len(l.links) }

func (t *tree) layout() layout {
	var l layout
	first := make(map[*inode]string)
	l.meta = append(l.meta, record{name: "./", ino: t.root.ino})
	var walk func(dir *node, prefix string)
	walk = func(dir *node, prefix string) {
		for _, name := range slices.Sorted(maps.Keys(dir.children)) {
			n, p := dir.children[name], prefix+name
			switch {
			case n.isDir():
				l.meta = append(l.meta, record{name: p + "/", ino: n.ino})
				walk(n, p+"/")
			case first[n.ino] != "":
				l.links = append(l.links, record{name: p, ino: n.ino, linkTo: first[n.ino]})
			default:
				first[n.ino] = p
				r := record{name: p, ino: n.ino}
				if n.ino.typ == tar.TypeReg && n.ino.size > 0 {
					l.data = append(l.data, r)
					l.dataBytes += n.ino.size
				} else {
					l.meta = append(l.meta, r)
				}
			}
		}
	}
	walk(t.root, "")
	slices.SortFunc(l.data, func(a, b record) int {
		if a.ino.layer != b.ino.layer {
			return a.ino.layer - b.ino.layer
		}
		return a.ino.ordinal - b.ino.ordinal
	})
	return l
}

// write is the second read: it emits the layout as one tar stream,
// copying file data from the layers that still hold it.
func (p *plan) write(ctx context.Context, w io.Writer) error {
	tw := tar.NewWriter(w)
	for _, r := range p.layout.meta {
		if err := tw.WriteHeader(header(r)); err != nil {
			return fmt.Errorf("write %q: %w", r.name, err)
		}
	}
	data := p.layout.data
	for len(data) > 0 {
		layer := data[0].ino.layer
		n := 1
		for n < len(data) && data[n].ino.layer == layer {
			n++
		}
		if err := p.copyLayer(ctx, tw, p.srcs[layer], data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	for _, r := range p.layout.links {
		if err := tw.WriteHeader(header(r)); err != nil {
			return fmt.Errorf("write %q: %w", r.name, err)
		}
	}
	return tw.Close()
}

// copyLayer copies the data of recs, all from s and in stream order. The
// layer is read a second time, so each entry is checked to be the one the
// plan saw; the diff_id check covers the rest.
func (p *plan) copyLayer(ctx context.Context, tw *tar.Writer, s source, recs []record) error {
	_, err := s.scan(ctx, func(i int, h *tar.Header, data io.Reader) error {
		r := recs[0]
		if i != r.ino.ordinal {
			return nil
		}
		if h.Name != r.ino.raw || h.Size != r.ino.size {
			return fmt.Errorf("entry %d changed between reads: %q (%d bytes), was %q (%d bytes)", i, h.Name, h.Size, r.ino.raw, r.ino.size)
		}
		if err := tw.WriteHeader(header(r)); err != nil {
			return fmt.Errorf("write %q: %w", r.name, err)
		}
		if n, err := io.Copy(tw, data); err != nil || n != r.ino.size {
			return fmt.Errorf("copy %q: %d of %d bytes: %w", r.name, n, r.ino.size, err)
		}
		if recs = recs[1:]; len(recs) == 0 {
			return errStop
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(recs) > 0 {
		return s.errorf("entry %d missing on the second read", recs[0].ino.ordinal)
	}
	return nil
}

// header is the tar header for r: metadata from its inode, in PAX so that
// xattrs and sub-second times survive.
func header(r record) *tar.Header {
	ino := r.ino
	h := &tar.Header{
		Typeflag:   ino.typ,
		Name:       r.name,
		Mode:       ino.meta.mode,
		Uid:        ino.meta.uid,
		Gid:        ino.meta.gid,
		ModTime:    ino.meta.mtime,
		AccessTime: ino.meta.mtime,
		ChangeTime: ino.meta.mtime,
		Format:     tar.FormatPAX,
	}
	switch {
	case r.linkTo != "":
		h.Typeflag, h.Linkname = tar.TypeLink, r.linkTo
	case ino.typ == tar.TypeReg:
		h.Size = ino.size
	case ino.typ == tar.TypeSymlink:
		h.Linkname = ino.link
	case ino.typ == tar.TypeChar || ino.typ == tar.TypeBlock:
		h.Devmajor, h.Devminor = ino.meta.devmajor, ino.meta.devminor
	}
	for k, v := range ino.meta.xattrs {
		if h.PAXRecords == nil {
			h.PAXRecords = make(map[string]string)
		}
		h.PAXRecords[xattrPAXPrefix+k] = v
	}
	return h
}
