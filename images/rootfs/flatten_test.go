package rootfs

import (
	"archive/tar"
	"errors"
	"testing"
)

func TestFlatten_Whiteout_RemovesLowerFile(t *testing.T) {
	tree := flattenLayers(t,
		tarOf(t, dir("etc/"), reg("etc/a", "a"), reg("etc/b", "b"), dir("etc/d/"), reg("etc/d/x", "x")),
		tarOf(t, reg("etc/.wh.a", ""), reg("etc/.wh.d", "")),
	)
	for _, gone := range []string{"etc/a", "etc/d", "etc/d/x", "etc/.wh.a", "etc/.wh.d"} {
		if _, ok := tree[gone]; ok {
			t.Errorf("%s survived its whiteout", gone)
		}
	}
	if tree["etc/b"].body != "b" {
		t.Errorf("etc/b = %q, want b", tree["etc/b"].body)
	}
}

func TestFlatten_Whiteout_SparesItsOwnLayer(t *testing.T) {
	// The spec's whiteouts hide lower layers only, even when the tar lists
	// the whiteout after the entry it names.
	tree := flattenLayers(t,
		tarOf(t, reg("f", "old")),
		tarOf(t, reg("f", "new"), reg(".wh.f", "")),
	)
	if tree["f"].body != "new" {
		t.Errorf("f = %q, want new", tree["f"].body)
	}
}

func TestFlatten_Opaque_HidesLowerKeepsSameLayer(t *testing.T) {
	tree := flattenLayers(t,
		tarOf(t, dir("d/"), reg("d/lower", "l"), dir("d/sub/"), reg("d/sub/deep", "x"), reg("keep", "k")),
		tarOf(t, reg("d/upper", "u"), reg("d/.wh..wh..opq", ""), dir("d/sub/")),
	)
	for _, gone := range []string{"d/lower", "d/sub/deep", "d/.wh..wh..opq"} {
		if _, ok := tree[gone]; ok {
			t.Errorf("%s survived the opaque whiteout", gone)
		}
	}
	for name, body := range map[string]string{"d/upper": "u", "keep": "k"} {
		if tree[name].body != body {
			t.Errorf("%s = %q, want %q", name, tree[name].body, body)
		}
	}
	if tree["d/sub"].Typeflag != tar.TypeDir {
		t.Errorf("d/sub, re-added by the opaque layer, is missing")
	}
}

func TestFlatten_LaterEntriesReplace(t *testing.T) {
	tree := flattenLayers(t,
		tarOf(t, reg("f", "one"), dir("d/"), reg("d/x", "x"), reg("g", "file"), sym("s", "f")),
		tarOf(t, reg("f", "two"), reg("d", "now a file"), dir("g/"), reg("g/y", "y"), reg("s", "not a link")),
		tarOf(t, reg("f", "three")),
	)
	want := map[string]string{"f": "three", "d": "now a file", "g/y": "y", "s": "not a link"}
	for name, body := range want {
		if tree[name].body != body {
			t.Errorf("%s = %q, want %q", name, tree[name].body, body)
		}
	}
	if _, ok := tree["d/x"]; ok {
		t.Error("d/x survived its directory's replacement by a file")
	}
	if tree["s"].Typeflag != tar.TypeReg {
		t.Errorf("s is type %q, want a regular file", tree["s"].Typeflag)
	}
}

func TestFlatten_DirectoriesMerge(t *testing.T) {
	tree := flattenLayers(t,
		tarOf(t, owned(dir("d/"), 0, 0, 0o755), reg("d/lower", "l")),
		tarOf(t, owned(dir("d/"), 7, 8, 0o700), reg("d/upper", "u")),
	)
	if tree["d/lower"].body != "l" || tree["d/upper"].body != "u" {
		t.Errorf("merged d holds lower=%q upper=%q", tree["d/lower"].body, tree["d/upper"].body)
	}
	if d := tree["d"]; d.Mode != 0o700 || d.Uid != 7 || d.Gid != 8 {
		t.Errorf("d: mode %o uid %d gid %d, want the upper layer's 700 7 8", d.Mode, d.Uid, d.Gid)
	}
}

func TestFlatten_Hardlink_SharesOneInode(t *testing.T) {
	tree := flattenLayers(t, tarOf(t, reg("a", "data"), hard("b", "a"), hard("c", "/a")))
	if tree["a"].body != "data" || tree["b"].Linkname != "a" || tree["c"].Linkname != "a" {
		t.Errorf("a=%q b->%q c->%q, want data, a, a", tree["a"].body, tree["b"].Linkname, tree["c"].Linkname)
	}
}

func TestFlatten_Hardlink_TargetDeleted_KeepsData(t *testing.T) {
	tree := flattenLayers(t,
		tarOf(t, reg("a", "data"), hard("b", "a")),
		tarOf(t, reg(".wh.a", "")),
	)
	if _, ok := tree["a"]; ok {
		t.Error("a survived its whiteout")
	}
	if b := tree["b"]; b.Typeflag != tar.TypeReg || b.body != "data" {
		t.Errorf("b: type %q body %q, want the data as a regular file", b.Typeflag, b.body)
	}
}

func TestFlatten_Hardlink_TargetReplaced_KeepsOldData(t *testing.T) {
	tree := flattenLayers(t,
		tarOf(t, reg("z", "old"), hard("b", "z"), hard("c", "z")),
		tarOf(t, reg("z", "new")),
	)
	if tree["z"].body != "new" || tree["b"].body != "old" || tree["c"].Linkname != "b" {
		t.Errorf("z=%q b=%q c->%q, want new, old, b", tree["z"].body, tree["b"].body, tree["c"].Linkname)
	}
}

func TestFlatten_Hardlink_ToSymlinkLinksTheSymlink(t *testing.T) {
	// The first name in the output ("h") carries the inode, a symlink.
	tree := flattenLayers(t, tarOf(t, reg("f", "x"), sym("s", "f"), hard("h", "s")))
	if h, s := tree["h"], tree["s"]; h.Typeflag != tar.TypeSymlink || h.Linkname != "f" || s.Typeflag != tar.TypeLink || s.Linkname != "h" {
		t.Errorf("h: type %q -> %q, s: type %q -> %q; want h a symlink to f, s a hardlink to h", h.Typeflag, h.Linkname, s.Typeflag, s.Linkname)
	}
}

func TestFlatten_Symlink_TargetKeptAsWritten(t *testing.T) {
	// The guest resolves symlinks in its own root; the host never does.
	tree := flattenLayers(t, tarOf(t, sym("abs", "/etc/passwd"), sym("rel", "../../../etc/shadow"), sym("dot", ".")))
	for name, target := range map[string]string{"abs": "/etc/passwd", "rel": "../../../etc/shadow", "dot": "."} {
		if h := tree[name]; h.Typeflag != tar.TypeSymlink || h.Linkname != target {
			t.Errorf("%s: type %q -> %q, want a symlink to %q", name, h.Typeflag, h.Linkname, target)
		}
	}
}

func TestFlatten_Metadata_Kept(t *testing.T) {
	su := owned(reg("bin/su", "elf"), 0, 0, 0o4755)
	su.PAXRecords = map[string]string{
		"SCHILY.xattr.security.capability":     "\x01\x00\x00\x02",
		"SCHILY.xattr.user.note":               "hi",
		"SCHILY.xattr.trusted.overlay.opaque":  "y",
		"SCHILY.xattr.system.posix_acl_access": "acl",
	}
	null := ent{Header: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3, ModTime: mtime}}
	fifo := ent{Header: tar.Header{Typeflag: tar.TypeFifo, Name: "run/fifo", Mode: 0o600, Uid: 5, ModTime: mtime}}
	tree := flattenLayers(t, tarOf(t, su, owned(dir("home/u/"), 1000, 1001, 0o1750), owned(reg("home/u/f", "x"), 1000, 1001, 0o600), null, fifo))

	for name, want := range map[string][3]int64{"bin/su": {0o4755, 0, 0}, "home/u": {0o1750, 1000, 1001}, "home/u/f": {0o600, 1000, 1001}, "run/fifo": {0o600, 5, 0}} {
		h := tree[name]
		if h.Header == nil || h.Mode != want[0] || int64(h.Uid) != want[1] || int64(h.Gid) != want[2] {
			t.Errorf("%s: %+v, want mode %o uid %d gid %d", name, h.Header, want[0], want[1], want[2])
			continue
		}
		if !h.ModTime.Equal(mtime) {
			t.Errorf("%s: mtime %v, want %v", name, h.ModTime, mtime)
		}
	}
	x := tree["bin/su"].PAXRecords
	if x["SCHILY.xattr.security.capability"] != "\x01\x00\x00\x02" || x["SCHILY.xattr.user.note"] != "hi" {
		t.Errorf("bin/su lost its xattrs: %q", x)
	}
	if _, ok := x["SCHILY.xattr.trusted.overlay.opaque"]; ok {
		t.Error("trusted.overlay.opaque reached the output; the guest overlay would obey it")
	}
	if _, ok := x["SCHILY.xattr.system.posix_acl_access"]; ok {
		t.Error("system.posix_acl_access reached the output")
	}
	if n := tree["dev/null"]; n.Typeflag != tar.TypeChar || n.Devmajor != 1 || n.Devminor != 3 {
		t.Errorf("dev/null: type %q %d:%d, want a char device 1:3", n.Typeflag, n.Devmajor, n.Devminor)
	}
	if tree["run/fifo"].Typeflag != tar.TypeFifo {
		t.Errorf("run/fifo: type %q, want a FIFO", tree["run/fifo"].Typeflag)
	}
}

func TestFlatten_ImplicitParents_Made(t *testing.T) {
	tree := flattenLayers(t, tarOf(t, reg("a/b/c", "x")))
	for _, d := range []string{".", "a", "a/b"} {
		if h := tree[d]; h.Header == nil || h.Typeflag != tar.TypeDir || h.Mode != 0o755 || h.Uid != 0 {
			t.Errorf("%s: %+v, want a 0755 root-owned directory", d, h.Header)
		}
	}
}

func TestFlatten_RootEntry_SetsRootMetadata(t *testing.T) {
	tree := flattenLayers(t, tarOf(t, owned(dir("./"), 0, 0, 0o700), reg("f", "x")))
	if tree["."].Mode != 0o700 {
		t.Errorf("root mode %o, want 700", tree["."].Mode)
	}
}

func TestFlatten_DeviceNumbers_Bounded(t *testing.T) {
	for _, dev := range [][2]int64{{1 << 12, 0}, {0, 1 << 20}} {
		e := ent{Header: tar.Header{Typeflag: tar.TypeBlock, Name: "dev/x", Mode: 0o600, Devmajor: dev[0], Devminor: dev[1]}}
		if err := flattenErr(t, tarOf(t, e)); !errors.Is(err, ErrMalformed) {
			t.Errorf("device %d:%d: err = %v, want ErrMalformed", dev[0], dev[1], err)
		}
	}
}
