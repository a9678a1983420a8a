package rootfs

import (
	"archive/tar"
	"fmt"
	"math"
	"strings"
	"time"
)

// OCI image spec, "Whiteouts".
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh." // AUFS bookkeeping: never part of the tree
	opaqueWhiteout = ".wh..wh..opq"
)

// kind says what an entry does to the tree.
type kind int

const (
	kindPut      kind = iota // create or replace a path
	kindWhiteout             // delete a lower path
	kindOpaque               // hide a directory's lower contents
	kindSkip                 // carries nothing (PAX global header, AUFS metadata)
)

// meta is the metadata an entry carries into the file system.
type meta struct {
	mode               int64 // permission, setuid, setgid and sticky bits
	uid, gid           int
	mtime              time.Time
	devmajor, devminor int64
	xattrs             map[string]string // PAX "SCHILY.xattr." records kept
}

// entry is one tar header, checked and normalised, without its data.
type entry struct {
	ordinal int      // position in the layer's tar stream, for the second read
	raw     string   // the name as written, to check the second read and for errors
	parts   []string // confined path; nil is the root
	kind    kind
	typ     byte   // tar.TypeReg, TypeDir, TypeSymlink, TypeLink, TypeChar, TypeBlock or TypeFifo
	link    string // symlink target, or the hardlink target as written
	size    int64  // data bytes; 0 for everything but regular files
	meta    meta
}

// xattrPAXPrefix is how tar carries extended attributes.
const xattrPAXPrefix = "SCHILY.xattr."

// keptXattr reports whether an xattr is copied into the disk. system.*
// (POSIX ACLs) would need a format conversion tar2ext4 does not do, and
// trusted.* includes trusted.overlay.*, which the guest's overlayfs would
// obey on its lower layer.
func keptXattr(name string) bool {
	return strings.HasPrefix(name, "user.") || strings.HasPrefix(name, "security.")
}

// newEntry checks and normalises one tar header.
func newEntry(ordinal int, h *tar.Header) (entry, error) {
	e := entry{ordinal: ordinal, raw: h.Name}
	if h.Typeflag == tar.TypeXGlobalHeader {
		e.kind = kindSkip
		return e, nil
	}
	parts, err := splitPath(h.Name)
	if err != nil {
		return e, err
	}
	e.parts = parts
	e.kind = classify(parts)
	if e.kind != kindPut {
		return e, nil
	}
	if e.typ, err = normalType(h); err != nil {
		return e, err
	}
	if e.meta, err = newMeta(h, e.typ); err != nil {
		return e, err
	}
	switch e.typ {
	case tar.TypeReg:
		e.size = h.Size
	case tar.TypeSymlink, tar.TypeLink:
		if h.Linkname == "" || strings.IndexByte(h.Linkname, 0) >= 0 || len(h.Linkname) > maxPath {
			return e, fmt.Errorf("%q: link target %.64q: %w", h.Name, h.Linkname, ErrMalformed)
		}
		e.link = h.Linkname
	}
	return e, nil
}

// classify recognises whiteouts by the last component and drops AUFS
// metadata wherever it sits, as docker does.
func classify(parts []string) kind {
	if len(parts) == 0 {
		return kindPut
	}
	for _, c := range parts[:len(parts)-1] {
		if strings.HasPrefix(c, whiteoutMeta) {
			return kindSkip
		}
	}
	base := parts[len(parts)-1]
	switch {
	case base == opaqueWhiteout:
		return kindOpaque
	case strings.HasPrefix(base, whiteoutMeta):
		return kindSkip
	case strings.HasPrefix(base, whiteoutPrefix):
		return kindWhiteout
	}
	return kindPut
}

// normalType folds the regular-file spellings into tar.TypeReg and rejects
// types that have no file behind them.
func normalType(h *tar.Header) (byte, error) {
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeCont, tar.TypeGNUSparse: // archive/tar already folds TypeRegA
		return tar.TypeReg, nil
	case tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return h.Typeflag, nil
	}
	return 0, fmt.Errorf("%q: unsupported tar type %q: %w", h.Name, h.Typeflag, ErrMalformed)
}

func newMeta(h *tar.Header, typ byte) (meta, error) {
	m := meta{mode: h.Mode & 0o7777, uid: h.Uid, gid: h.Gid, mtime: h.ModTime}
	if !fitsUint32(int64(h.Uid)) || !fitsUint32(int64(h.Gid)) {
		return m, fmt.Errorf("%q: uid/gid %d/%d out of range: %w", h.Name, h.Uid, h.Gid, ErrMalformed)
	}
	if typ == tar.TypeChar || typ == tar.TypeBlock {
		// Linux's dev_t: a 12-bit major, a 20-bit minor (also all a PAX
		// header can carry).
		if h.Devmajor < 0 || h.Devmajor >= 1<<12 || h.Devminor < 0 || h.Devminor >= 1<<20 {
			return m, fmt.Errorf("%q: device %d:%d out of range: %w", h.Name, h.Devmajor, h.Devminor, ErrMalformed)
		}
		m.devmajor, m.devminor = h.Devmajor, h.Devminor
	}
	for k, v := range h.PAXRecords {
		name, ok := strings.CutPrefix(k, xattrPAXPrefix)
		if !ok || !keptXattr(name) {
			continue
		}
		if m.xattrs == nil {
			m.xattrs = make(map[string]string)
		}
		m.xattrs[name] = v
	}
	return m, nil
}

// fitsUint32 excludes 2^32-1 too: it is (uid_t)-1, "no change", in Linux.
func fitsUint32(v int64) bool { return v >= 0 && v < math.MaxUint32 }
