package rootfs

import (
	"archive/tar"
	"errors"
	"fmt"
	"strings"
	"time"
)

// maxSymlinks is Linux's MAXSYMLINKS: past it a lookup fails with ELOOP.
const maxSymlinks = 40

// inode is what a path names; hardlinked paths share one.
type inode struct {
	typ  byte // as in entry
	meta meta
	size int64
	link string // symlink target, kept as written: the guest resolves it
	// A regular file's data is entry ordinal of layer; raw is that entry's
	// name, to check that the second read finds the same entry.
	layer, ordinal int
	raw            string
}

// node is a directory entry; a directory's node owns its children.
type node struct {
	ino      *inode
	children map[string]*node // non-nil for directories only
}

func (n *node) isDir() bool { return n.children != nil }

// implicitDir is a directory no layer declared: docker's MkdirAll makes it
// 0755 and root-owned; the epoch keeps builds reproducible.
func implicitDir() *node {
	return &node{
		ino:      &inode{typ: tar.TypeDir, meta: meta{mode: 0o755, mtime: time.Unix(0, 0)}},
		children: make(map[string]*node),
	}
}

// tree is the file system as the layers applied so far leave it.
type tree struct {
	root *node
}

func newTree() *tree { return &tree{root: implicitDir()} }

// apply applies one layer. Whiteouts go first: the OCI image spec says they
// hide only lower layers, so an entry the same layer adds survives its own
// layer's whiteouts whatever order the tar lists them in.
func (t *tree) apply(es []entry, layer int) error {
	for _, e := range es {
		var err error
		switch e.kind {
		case kindWhiteout:
			err = t.whiteout(e)
		case kindOpaque:
			err = t.opaque(e)
		}
		if err != nil {
			return err
		}
	}
	for _, e := range es {
		if e.kind != kindPut {
			continue
		}
		if err := t.put(e, layer); err != nil {
			return err
		}
	}
	return nil
}

var errNotFound = errors.New("no such directory")

// dir resolves the directory that parts name. Symlinks on the way are
// followed as the guest kernel would follow them inside its root: an
// absolute target starts again at the root and ".." stops at the root, so
// an entry under "etc" when etc -> /host lands in host/, which is where the
// guest will look for it, and nothing resolves outside the tree. With
// create, missing directories are made as docker's MkdirAll makes them;
// without, a missing one is errNotFound. It also returns the resolved path.
func (t *tree) dir(parts []string, create bool) (*node, []string, error) {
	stack := []*node{t.root}
	var names []string
	pending := parts
	follows := 0
	for len(pending) > 0 {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(names) > 0 {
				stack, names = stack[:len(stack)-1], names[:len(names)-1]
			}
			continue
		}
		cur := stack[len(stack)-1]
		child := cur.children[c]
		if child == nil {
			if !create {
				return nil, nil, errNotFound
			}
			if len(c) > maxName { // only a symlink target can bring one
				return nil, nil, fmt.Errorf("%.64q...: component longer than %d bytes: %w", c, maxName, ErrMalformed)
			}
			child = implicitDir()
			cur.children[c] = child
		}
		if child.ino.typ == tar.TypeSymlink {
			if follows++; follows > maxSymlinks {
				return nil, nil, fmt.Errorf("too many levels of symlinks at %q: %w", strings.Join(names, "/"), ErrMalformed)
			}
			target := child.ino.link
			if strings.HasPrefix(target, "/") {
				stack, names = stack[:1], names[:0]
			}
			pending = append(strings.Split(target, "/"), pending...)
			continue
		}
		if !child.isDir() {
			return nil, nil, fmt.Errorf("%q is not a directory: %w", strings.Join(append(names, c), "/"), ErrMalformed)
		}
		stack, names = append(stack, child), append(names, c)
	}
	return stack[len(stack)-1], names, nil
}

// parent resolves where e goes: its parent directory (created if missing)
// and its last component, which is never followed: an entry replaces a
// symlink rather than writing through it.
func (t *tree) parent(e entry) (*node, string, error) {
	dir, names, err := t.dir(e.parts[:len(e.parts)-1], true)
	if err != nil {
		return nil, "", fmt.Errorf("%q: %w", e.raw, err)
	}
	base := e.parts[len(e.parts)-1]
	n := len(base)
	for _, c := range names {
		n += len(c) + 1
	}
	if n > maxPath {
		return nil, "", fmt.Errorf("%q resolves to a path longer than %d bytes: %w", e.raw, maxPath, ErrMalformed)
	}
	return dir, base, nil
}

// whiteout deletes ".wh.NAME"'s NAME, whatever it is, from the lower layers.
func (t *tree) whiteout(e entry) error {
	dir, base, err := t.parent(e)
	if err != nil {
		return err
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("%q: whiteout of %q: %w", e.raw, name, ErrMalformed)
	}
	delete(dir.children, name)
	return nil
}

// opaque empties the directory holding ".wh..wh..opq" of what lower layers
// put there. As in docker, the directory itself is not followed: when it is
// a symlink or a file nothing is hidden, and when it is missing it is made.
func (t *tree) opaque(e entry) error {
	if len(e.parts) == 1 {
		t.root.children = make(map[string]*node)
		return nil
	}
	d := entry{raw: e.raw, parts: e.parts[:len(e.parts)-1]}
	dir, base, err := t.parent(d)
	if err != nil {
		return err
	}
	switch n := dir.children[base]; {
	case n == nil:
		dir.children[base] = implicitDir()
	case n.isDir():
		n.children = make(map[string]*node)
	}
	return nil
}

// put creates or replaces e's path. A directory over a directory merges
// (the new metadata, the old children); anything else replaces what was
// there, subtree and all, as docker's RemoveAll does.
func (t *tree) put(e entry, layer int) error {
	if e.parts == nil {
		if e.typ != tar.TypeDir {
			return fmt.Errorf("%q: the root must stay a directory: %w", e.raw, ErrMalformed)
		}
		t.root.ino.meta = e.meta
		return nil
	}
	dir, base, err := t.parent(e)
	if err != nil {
		return err
	}
	old := dir.children[base]
	switch {
	case e.typ == tar.TypeLink:
		return t.link(dir, base, e)
	case e.typ == tar.TypeDir && old != nil && old.isDir():
		old.ino.meta = e.meta
		return nil
	}
	n := &node{ino: &inode{typ: e.typ, meta: e.meta, size: e.size, link: e.link}}
	switch {
	case e.typ == tar.TypeDir:
		n.children = make(map[string]*node)
	case e.typ == tar.TypeReg && e.size > 0:
		n.ino.layer, n.ino.ordinal, n.ino.raw = layer, e.ordinal, e.raw
	}
	dir.children[base] = n
	return nil
}

// link makes base in dir another name for e's target, which must already
// exist inside the tree and not be a directory. The target's last
// component is not followed (linkat(2) without AT_SYMLINK_FOLLOW), so a
// link to a symlink links the symlink. The inode is shared: if the target's
// path is later deleted or replaced, this name keeps the data.
func (t *tree) link(dir *node, base string, e entry) error {
	parts, err := splitPath(e.link)
	if err != nil {
		return fmt.Errorf("%q: hardlink target: %w", e.raw, err)
	}
	if parts == nil {
		return fmt.Errorf("%q: hardlink to the root: %w", e.raw, ErrHardlink)
	}
	tdir, _, err := t.dir(parts[:len(parts)-1], false)
	if err != nil {
		return fmt.Errorf("%q: hardlink target %q: %w: %w", e.raw, e.link, ErrHardlink, err)
	}
	target := tdir.children[parts[len(parts)-1]]
	switch {
	case target == nil:
		return fmt.Errorf("%q: hardlink target %q does not exist: %w", e.raw, e.link, ErrHardlink)
	case target.isDir():
		return fmt.Errorf("%q: hardlink target %q is a directory: %w", e.raw, e.link, ErrHardlink)
	}
	dir.children[base] = &node{ino: target.ino}
	return nil
}
