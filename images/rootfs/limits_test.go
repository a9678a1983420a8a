package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func flattenErrLayers(t *testing.T, ls []v1.Layer) error {
	t.Helper()
	_, err := Flatten(context.Background(), ls, io.Discard, Options{})
	return err
}

// headerOnly is a tar whose one entry claims size bytes and has none.
func headerOnly(t *testing.T, size int64) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "huge", Size: size, Format: tar.FormatPAX}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// gnuSparse is an old-GNU sparse entry, all hole, of the given logical size.
func gnuSparse(t *testing.T, size int64) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "sparse", Format: tar.FormatGNU}); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	b := buf.Bytes()
	b[156] = tar.TypeGNUSparse
	real := b[483:495] // realsize, base-256
	clear(real)
	real[0] = 0x80
	binary.BigEndian.PutUint64(real[4:], uint64(size))
	copy(b[148:156], "        ")
	var sum int
	for _, c := range b[:512] {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

func TestFlatten_HugeEntry_FailsBeforeReading(t *testing.T) {
	for name, layer := range map[string][]byte{
		"claimed 1 TiB": headerOnly(t, 1<<40),
		"sparse 1 TiB":  gnuSparse(t, 1<<40),
	} {
		_, err := flatten(context.Background(), bytesSources(layer), io.Discard, Options{MaxBytes: 1 << 20})
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: err = %v, want ErrTooLarge", name, err)
		}
	}
}

func TestFlatten_SparseEntry_ReadWhole(t *testing.T) {
	var out bytes.Buffer
	if _, err := flatten(context.Background(), bytesSources(gnuSparse(t, 10000)), &out, Options{}); err != nil {
		t.Fatal(err)
	}
	tree, err := checkStream(out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if s := tree["sparse"]; s.Typeflag != tar.TypeReg || s.body != strings.Repeat("\x00", 10000) {
		t.Errorf("sparse: type %q, %d bytes; want a regular file of 10000 zeros", s.Typeflag, len(s.body))
	}
}

func TestFlatten_TreeOverMaxBytes_Fails(t *testing.T) {
	layer := tarOf(t, reg("a", strings.Repeat("a", 600)), reg("b", strings.Repeat("b", 600)))
	_, err := flatten(context.Background(), bytesSources(layer), io.Discard, Options{MaxBytes: 1000})
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("err = %v, want ErrTooLarge", err)
	}
}

func TestFlatten_ReplacedData_NotCounted(t *testing.T) {
	big := strings.Repeat("x", 800)
	st, err := flatten(context.Background(), bytesSources(tarOf(t, reg("f", big)), tarOf(t, reg("f", big))), io.Discard, Options{MaxBytes: 1000})
	if err != nil || st.DataBytes != 800 {
		t.Errorf("DataBytes = %d, err = %v; want 800, nil", st.DataBytes, err)
	}
}

func TestFlatten_MaxEntries(t *testing.T) {
	layer := tarOf(t, reg("a", ""), reg("b", ""), reg("c", ""))
	_, err := flatten(context.Background(), bytesSources(layer), io.Discard, Options{MaxEntries: 2})
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("err = %v, want ErrTooLarge", err)
	}
}

func TestFlatten_MalformedTar_NamesLayerDigest(t *testing.T) {
	good := tarOf(t, reg("f", "some data here"))
	for name, bad := range map[string][]byte{
		"garbage":   bytes.Repeat([]byte("x"), 1024),
		"truncated": good[:len(good)-1024-512+5], // into the data
	} {
		ls := layersOf(t, good, bad)
		err := flattenErrLayers(t, ls)
		var le *LayerError
		d, _ := ls[1].Digest()
		if !errors.Is(err, ErrMalformed) || !errors.As(err, &le) || le.Index != 1 || !strings.Contains(err.Error(), d.String()) {
			t.Errorf("%s: err = %v, want ErrMalformed naming layer 1 %s", name, err, d)
		}
	}
}

func TestFlatten_ReadError_NotMalformed(t *testing.T) {
	boom := errors.New("disk on fire")
	src := source{open: func() (io.ReadCloser, error) {
		return io.NopCloser(io.MultiReader(bytes.NewReader(make([]byte, 100)), errReader{boom})), nil
	}}
	_, err := flatten(context.Background(), []source{src}, io.Discard, Options{})
	if !errors.Is(err, boom) || errors.Is(err, ErrMalformed) {
		t.Errorf("err = %v, want the read error and not ErrMalformed", err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// lyingLayer claims another layer's diff_id.
type lyingLayer struct {
	v1.Layer
	diffID v1.Hash
}

func (l lyingLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }

func TestFlatten_DiffIDMismatch_Rejected(t *testing.T) {
	real := layerOf(t, tarOf(t, reg("f", "trusted")))
	claim, _ := real.DiffID()
	evil := lyingLayer{layerOf(t, tarOf(t, reg("f", "evil"))), claim}
	err := flattenErrLayers(t, []v1.Layer{evil})
	if !errors.Is(err, ErrDiffID) {
		t.Errorf("err = %v, want ErrDiffID", err)
	}
}

func TestFlatten_LayerChangedBetweenReads_Rejected(t *testing.T) {
	reads := [][]byte{tarOf(t, reg("f", "first")), tarOf(t, reg("g", "other"))}
	src := source{open: func() (io.ReadCloser, error) {
		b := reads[0]
		reads = reads[1:]
		return io.NopCloser(bytes.NewReader(b)), nil
	}}
	if _, err := flatten(context.Background(), []source{src}, io.Discard, Options{}); err == nil || !strings.Contains(err.Error(), "changed between reads") {
		t.Errorf("err = %v, want a changed-between-reads error", err)
	}
}

func TestFlatten_Canceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := flatten(ctx, bytesSources(tarOf(t, reg("f", "x"))), io.Discard, Options{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}
