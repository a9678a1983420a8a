package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"path"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// mtime is a fixed time with a sub-second part, to see it survive.
var mtime = time.Unix(1700000000, 123456789)

// ent is one entry of a test layer.
type ent struct {
	tar.Header
	body string
}

func reg(name, body string) ent {
	return ent{tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: mtime}, body}
}

func dir(name string) ent {
	return ent{Header: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: mtime}}
}

func sym(name, target string) ent {
	return ent{Header: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: mtime}}
}

func hard(name, target string) ent {
	return ent{Header: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644, ModTime: mtime}}
}

// owned sets uid, gid and mode.
func owned(e ent, uid, gid int, mode int64) ent {
	e.Uid, e.Gid, e.Mode = uid, gid, mode
	return e
}

func tarOf(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := e.Header
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("write %q: %v", e.Name, err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatalf("write %q: %v", e.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// layerOf makes a v1.Layer, with a real digest and diff_id, from tar bytes.
func layerOf(t testing.TB, data []byte) v1.Layer {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func layersOf(t testing.TB, tars ...[]byte) []v1.Layer {
	ls := make([]v1.Layer, len(tars))
	for i, b := range tars {
		ls[i] = layerOf(t, b)
	}
	return ls
}

// bytesSources are unchecked sources over raw bytes, for the fuzzer.
func bytesSources(tars ...[]byte) []source {
	srcs := make([]source, len(tars))
	for i, b := range tars {
		srcs[i] = source{index: i, open: func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(b)), nil
		}}
	}
	return srcs
}

// got is one entry of a flattened stream.
type got struct {
	*tar.Header
	body string
}

// flattenLayers flattens tars through the public API and checks the
// stream's invariants.
func flattenLayers(t *testing.T, tars ...[]byte) map[string]got {
	t.Helper()
	var buf bytes.Buffer
	st, err := Flatten(context.Background(), layersOf(t, tars...), &buf, Options{})
	if err != nil {
		t.Fatalf("Flatten: %v", err)
	}
	tree, err := checkStream(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if st.Entries != len(tree) {
		t.Errorf("Stats.Entries = %d, stream has %d", st.Entries, len(tree))
	}
	return tree
}

func flattenErr(t *testing.T, tars ...[]byte) error {
	t.Helper()
	_, err := Flatten(context.Background(), layersOf(t, tars...), io.Discard, Options{})
	return err
}

// checkStream reads a flattened tar and checks what Flatten promises: every
// name clean, relative and unique; every parent an explicit directory met
// earlier, so nothing lies under a symlink; every hardlink pointing back at
// an earlier non-directory. It returns the entries by name, without the
// trailing slash of directories ("." is the root).
func checkStream(data []byte) (map[string]got, error) {
	tree := make(map[string]got)
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return tree, nil
		}
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		name := strings.TrimSuffix(h.Name, "/")
		if err := checkName(name); err != nil {
			return nil, err
		}
		if _, dup := tree[name]; dup {
			return nil, errorf("%q appears twice", name)
		}
		if (h.Typeflag == tar.TypeDir) != strings.HasSuffix(h.Name, "/") {
			return nil, errorf("%q: type %q and trailing slash disagree", h.Name, h.Typeflag)
		}
		if name == "." && len(tree) > 0 || name != "." && len(tree) == 0 {
			return nil, errorf("%q: the root must come first, and only once", name)
		}
		if p, ok := tree[path.Dir(name)]; name != "." && (!ok || p.Typeflag != tar.TypeDir) {
			return nil, errorf("%q: parent is not a directory written before it", name)
		}
		if h.Typeflag == tar.TypeLink {
			if tgt, ok := tree[h.Linkname]; !ok || tgt.Typeflag == tar.TypeDir || tgt.Typeflag == tar.TypeLink {
				return nil, errorf("%q: hardlink to %q, not an earlier file", name, h.Linkname)
			}
		}
		tree[name] = got{h, string(body)}
	}
}

func checkName(name string) error {
	if name == "." {
		return nil
	}
	if name == "" || path.IsAbs(name) || path.Clean(name) != name || name == ".." || strings.HasPrefix(name, "../") || strings.ContainsRune(name, 0) {
		return errorf("%q is not a clean relative name", name)
	}
	return nil
}

func errorf(format string, a ...any) error { return fmt.Errorf(format, a...) }
