package rootfs

import (
	"archive/tar"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestSplitPath(t *testing.T) {
	for _, tc := range []struct {
		name string
		want []string
		err  error
	}{
		{"a/b", []string{"a", "b"}, nil},
		{"/abs/path", []string{"abs", "path"}, nil},
		{"//abs//path/", []string{"abs", "path"}, nil},
		{"./a/./b/../c", []string{"a", "c"}, nil},
		{"a/..", nil, nil},
		{"/", nil, nil},
		{"", nil, nil},
		{"../../etc/passwd", nil, ErrPathEscape},
		{"/../etc/passwd", nil, ErrPathEscape},
		{"a/../../etc", nil, ErrPathEscape},
		{"..", nil, ErrPathEscape},
		{"a\x00b", nil, ErrMalformed},
		{strings.Repeat("x", maxName+1), nil, ErrMalformed},
		{strings.Repeat("x/", maxPath/2+1), nil, ErrMalformed},
	} {
		got, err := splitPath(tc.name)
		if !errors.Is(err, tc.err) || !slices.Equal(got, tc.want) {
			t.Errorf("splitPath(%.40q) = %q, %v; want %q, %v", tc.name, got, err, tc.want, tc.err)
		}
	}
}

func TestFlatten_DotDotEscape_Rejected(t *testing.T) {
	ls := layersOf(t, tarOf(t, reg("ok", "x")), tarOf(t, reg("../../etc/passwd", "pwned")))
	err := flattenErrLayers(t, ls)
	var le *LayerError
	if !errors.Is(err, ErrPathEscape) || !errors.As(err, &le) || le.Index != 1 {
		t.Fatalf("err = %v, want ErrPathEscape from layer 1", err)
	}
	if d, _ := ls[1].Digest(); le.Digest != d.String() || !strings.Contains(err.Error(), d.String()) {
		t.Errorf("error %q does not name layer digest %s", err, d)
	}
}

func TestFlatten_AbsolutePath_Rerooted(t *testing.T) {
	tree := flattenLayers(t, tarOf(t, reg("/abs/path", "x"), dir("/abs/dir/")))
	if tree["abs/path"].body != "x" || tree["abs/dir"].Header == nil {
		t.Errorf("absolute names were not re-rooted: %v", keys(tree))
	}
}

func TestFlatten_SymlinkParent_ResolvedInsideRoot(t *testing.T) {
	tree := flattenLayers(t,
		tarOf(t, sym("etc", "/host"), dir("usr/lib/"), sym("lib", "usr/lib"), sym("up", "../../.."), dir("host/"), reg("host/old", "o")),
		tarOf(t, reg("etc/passwd", "root:x:0:0"), reg("lib/x.so", "elf"), reg("up/tmp/x", "t"), reg("etc/.wh.old", "")),
	)
	for name, body := range map[string]string{"host/passwd": "root:x:0:0", "usr/lib/x.so": "elf", "tmp/x": "t"} {
		if tree[name].body != body {
			t.Errorf("%s = %q, want %q", name, tree[name].body, body)
		}
	}
	if _, ok := tree["host/old"]; ok {
		t.Error("etc/.wh.old did not reach host/old through etc -> /host")
	}
	for name, target := range map[string]string{"etc": "/host", "lib": "usr/lib", "up": "../../.."} {
		if h := tree[name]; h.Typeflag != tar.TypeSymlink || h.Linkname != target {
			t.Errorf("%s: type %q -> %q, want the symlink to %q kept", name, h.Typeflag, h.Linkname, target)
		}
	}
}

func TestFlatten_SymlinkParent_DanglingMadeInsideRoot(t *testing.T) {
	tree := flattenLayers(t, tarOf(t, sym("etc", "/nowhere/deep")), tarOf(t, reg("etc/f", "x")))
	if tree["nowhere/deep/f"].body != "x" || tree["etc"].Typeflag != tar.TypeSymlink {
		t.Errorf("entry under a dangling symlink: got %v", keys(tree))
	}
}

func TestFlatten_LastComponentSymlink_Replaced(t *testing.T) {
	// Writing "etc" over etc -> /host replaces the link, never host/.
	tree := flattenLayers(t, tarOf(t, sym("etc", "/host"), dir("host/")), tarOf(t, reg("etc", "file")))
	if tree["etc"].Typeflag != tar.TypeReg || tree["host"].Typeflag != tar.TypeDir {
		t.Errorf("etc: %q, host: %q; want a file and the untouched directory", tree["etc"].Typeflag, tree["host"].Typeflag)
	}
}

func TestFlatten_BadParents_Rejected(t *testing.T) {
	for name, tars := range map[string][][]byte{
		"symlink loop":     {tarOf(t, sym("a", "b"), sym("b", "a")), tarOf(t, reg("a/x", "x"))},
		"self loop":        {tarOf(t, sym("a", "./a"), reg("a/x", "x"))},
		"file as parent":   {tarOf(t, reg("f", "x")), tarOf(t, reg("f/g", "y"))},
		"root replaced":    {tarOf(t, reg(".", ""))},
		"too long, linked": {tarOf(t, sym("l", strings.Repeat("d/", 2000)), reg("l/"+strings.Repeat("e/", 100)+"f", "x"))},
		"long component":   {tarOf(t, sym("l", strings.Repeat("n", maxName+1)), reg("l/f", "x"))},
	} {
		if err := flattenErr(t, tars...); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func TestFlatten_Hardlink_Rejected(t *testing.T) {
	for name, tc := range map[string]struct {
		tar  []byte
		want error
	}{
		"outside":     {tarOf(t, hard("h", "../../etc/shadow")), ErrPathEscape},
		"missing":     {tarOf(t, hard("h", "nope")), ErrHardlink},
		"missing dir": {tarOf(t, hard("h", "no/pe")), ErrHardlink},
		"directory":   {tarOf(t, dir("d/"), hard("h", "d")), ErrHardlink},
		"root":        {tarOf(t, hard("h", "/")), ErrHardlink},
		"empty":       {tarOf(t, hard("h", "")), ErrMalformed},
		"later entry": {tarOf(t, hard("h", "f"), reg("f", "x")), ErrHardlink},
	} {
		if err := flattenErr(t, tc.tar); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.want)
		}
	}
}

func TestFlatten_Hardlink_TargetThroughSymlinkParent(t *testing.T) {
	tree := flattenLayers(t, tarOf(t, sym("etc", "/host"), reg("host/passwd", "p"), hard("copy", "/etc/passwd")))
	// "copy" sorts first, so it carries the data and host/passwd links to it.
	if c, h := tree["copy"], tree["host/passwd"]; c.body != "p" || h.Typeflag != tar.TypeLink || h.Linkname != "copy" {
		t.Errorf("copy = %q, host/passwd: type %q -> %q; want p, and a hardlink to copy", c.body, h.Typeflag, h.Linkname)
	}
}

func keys(m map[string]got) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
