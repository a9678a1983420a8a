package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/Microsoft/hcsshim/ext4/tar2ext4"
)

// FuzzFlatten feeds two arbitrary layers to the flattener. It must never
// panic, must reject only with the documented errors, and whatever it
// writes must keep every name clean, relative, unique and under explicit
// directories (checkStream), so nothing can land outside the root or
// behind a symlink.
func FuzzFlatten(f *testing.F) {
	f.Add(tarOf(f, dir("d/"), reg("d/a", "a"), sym("l", "/d"), hard("h", "d/a")),
		tarOf(f, reg("d/.wh..wh..opq", ""), reg("l/b", "b"), reg(".wh.d", "")))
	f.Add(tarOf(f, sym("etc", "../../host")), tarOf(f, reg("etc/passwd", "x"), hard("p", "etc/passwd")))
	f.Add(tarOf(f, reg("../../x", "x")), tarOf(f, reg("/abs", "y")))
	f.Add([]byte{}, []byte("not a tar"))
	f.Fuzz(func(t *testing.T, lower, upper []byte) {
		var out bytes.Buffer
		st, err := flatten(context.Background(), bytesSources(lower, upper), &out, Options{MaxBytes: 1 << 20, MaxEntries: 1000})
		if err != nil {
			for _, want := range []error{ErrMalformed, ErrPathEscape, ErrHardlink, ErrTooLarge} {
				if errors.Is(err, want) {
					return
				}
			}
			t.Fatalf("undocumented error: %v", err)
		}
		tree, err := checkStream(out.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if len(tree) != st.Entries {
			t.Fatalf("Stats.Entries = %d, stream has %d", st.Entries, len(tree))
		}
	})
}

// FuzzFlattenScript builds always-valid layers from a script, so the
// fuzzer spends its time on whiteouts, symlinked parents and hardlinks
// rather than on tar checksums; the output must also convert to ext4.
func FuzzFlattenScript(f *testing.F) {
	f.Add([]byte{0x02, 0x21, 0x10, 0x03, 0x30, 0x01, 0x12, 0x06, 0x04, 0x31, 0x00, 0x22, 0x05, 0x10})
	f.Add([]byte{0x02, 0x17, 0x43, 0x06, 0x00, 0x27, 0x00, 0x03, 0x11, 0x27})
	f.Fuzz(func(t *testing.T, script []byte) {
		var out bytes.Buffer
		st, err := flatten(context.Background(), bytesSources(scriptLayers(script)...), &out, Options{})
		if err != nil {
			for _, want := range []error{ErrMalformed, ErrPathEscape, ErrHardlink} {
				if errors.Is(err, want) {
					return
				}
			}
			t.Fatalf("undocumented error: %v", err)
		}
		tree, err := checkStream(out.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if len(tree) != st.Entries {
			t.Fatalf("Stats.Entries = %d, stream has %d", st.Entries, len(tree))
		}
		if err := tar2ext4.ConvertTarToExt4(&out, &memFile{}, tar2ext4.InlineData); err != nil {
			t.Fatalf("tar2ext4 rejects the flattened tree: %v", err)
		}
	})
}

// scriptWords are the path components a script draws from: enough to
// climb, whiteout, and collide.
var scriptWords = []string{"a", "b", "etc", "..", ".", "", ".wh.a", ".wh..wh..opq"}

// scriptLayers decodes a script: each op byte picks an entry type (low 3
// bits) and a path length; the bytes after it pick components.
func scriptLayers(script []byte) [][]byte {
	var layers [][]byte
	var ents []ent
	next := func() byte {
		if len(script) == 0 {
			return 0
		}
		b := script[0]
		script = script[1:]
		return b
	}
	name := func(n byte) string {
		parts := make([]string, 1+n%4)
		for i := range parts {
			parts[i] = scriptWords[int(next())%len(scriptWords)]
		}
		p := strings.Join(parts, "/")
		if n&0x8 != 0 {
			p = "/" + p
		}
		return p
	}
	for len(script) > 0 {
		op := next()
		n := op >> 3
		switch op & 7 {
		case 0:
			ents = append(ents, reg(name(n), "x"))
		case 1:
			ents = append(ents, dir(name(n)))
		case 2:
			ents = append(ents, sym(name(n), name(n>>2)))
		case 3:
			ents = append(ents, hard(name(n), name(n>>2)))
		case 4:
			ents = append(ents, ent{Header: tar.Header{Typeflag: tar.TypeFifo, Name: name(n), Mode: 0o600}})
		case 5:
			ents = append(ents, reg(name(n), ""))
		case 6:
			layers, ents = append(layers, laxTar(ents)), nil
		case 7:
			ents = append(ents, reg(name(n), strings.Repeat("y", 200)))
		}
	}
	return append(layers, laxTar(ents))
}

// laxTar is tarOf for generated entries: those archive/tar will not encode
// (a file name ending in "/") are left out.
func laxTar(ents []ent) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		if tw.WriteHeader(&e.Header) == nil {
			io.WriteString(tw, e.body)
		}
	}
	tw.Close()
	return buf.Bytes()
}

// memFile is the io.ReadWriteSeeker tar2ext4 writes to.
type memFile struct {
	b   []byte
	off int64
}

func (m *memFile) Write(p []byte) (int, error) {
	if end := m.off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	n := copy(m.b[m.off:], p)
	m.off += int64(n)
	return n, nil
}

func (m *memFile) Read(p []byte) (int, error) {
	if m.off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[m.off:])
	m.off += int64(n)
	return n, nil
}

func (m *memFile) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += m.off
	case io.SeekEnd:
		off += int64(len(m.b))
	}
	if off < 0 {
		return 0, errors.New("negative seek")
	}
	m.off = off
	return off, nil
}
