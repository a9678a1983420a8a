package virtio_test

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/vmm-dev/vmm/virtio"
)

func TestChainReader_SpansDescriptors(t *testing.T) {
	for _, chunk := range []int{1, 2, 3, 7, 64} {
		q, d := newQueue(t, 1<<20, 8, indirect)
		d.AddChain([][]byte{[]byte("hel"), {}, []byte("lo, "), []byte("world")}, []int{4})
		r := mustPop(t, q, d).Reader()
		var got []byte
		buf := make([]byte, chunk)
		for {
			n, err := r.Read(buf)
			got = append(got, buf[:n]...)
			if int(r.Remaining()) != 12-len(got) {
				t.Fatalf("chunk %d: Remaining %d after %d bytes", chunk, r.Remaining(), len(got))
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if string(got) != "hello, world" {
			t.Fatalf("chunk %d: read %q", chunk, got)
		}
	}
}

// TestChainReader_Skip: Skip passes bytes across buffers (and an empty
// one) without reading them, and stops at the end.
func TestChainReader_Skip(t *testing.T) {
	for skip := 0; skip <= 13; skip++ {
		q, d := newQueue(t, 1<<20, 8, indirect)
		d.AddChain([][]byte{[]byte("hel"), {}, []byte("lo, "), []byte("world")}, []int{4})
		r := mustPop(t, q, d).Reader()
		if got, want := r.Skip(uint32(skip)), min(skip, 12); int(got) != want {
			t.Fatalf("Skip(%d) = %d, want %d", skip, got, want)
		}
		rest, err := io.ReadAll(r)
		if err != nil || string(rest) != "hello, world"[min(skip, 12):] {
			t.Fatalf("after Skip(%d): read %q, %v", skip, rest, err)
		}
	}
}

func TestChainReader_Indirect(t *testing.T) {
	q, d := newQueue(t, 1<<20, 8, indirect)
	d.AddIndirectChain([][]byte{[]byte("in"), []byte("direct")}, []int{1})
	got, err := io.ReadAll(mustPop(t, q, d).Reader())
	if err != nil || string(got) != "indirect" {
		t.Fatalf("read %q, %v", got, err)
	}
}

func TestChainReader_NoReadableBuffers(t *testing.T) {
	q, d := newQueue(t, 1<<20, 8, 0)
	d.AddChain(nil, []int{4})
	r := mustPop(t, q, d).Reader()
	if n, err := r.Read(make([]byte, 4)); n != 0 || err != io.EOF {
		t.Fatalf("Read = %d, %v; want 0, EOF", n, err)
	}
	if n, err := r.Read(nil); n != 0 || err != nil {
		t.Fatalf("Read(nil) = %d, %v; want 0, nil", n, err)
	}
}

func TestChainReader_IndependentReaders(t *testing.T) {
	q, d := newQueue(t, 1<<20, 8, 0)
	d.AddChain([][]byte{[]byte("ab"), []byte("cd")}, nil)
	c := mustPop(t, q, d)
	if _, err := io.ReadAll(c.Reader()); err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(c.Reader())
	if string(got) != "abcd" {
		t.Fatalf("second reader read %q", got)
	}
}

func TestChainWriter_SpansDescriptorsAndCounts(t *testing.T) {
	q, d := newQueue(t, 1<<20, 8, indirect)
	for _, add := range []func([][]byte, []int) uint16{d.AddChain, d.AddIndirectChain} {
		head := add([][]byte{[]byte("request")}, []int{3, 0, 4, 5})
		c := mustPop(t, q, d)
		w := c.Writer()
		for _, s := range []string{"ab", "cdefg", "hijkl"} {
			if n, err := io.WriteString(w, s); n != len(s) || err != nil {
				t.Fatalf("Write(%q) = %d, %v", s, n, err)
			}
		}
		if w.Written() != 12 || w.Remaining() != 0 {
			t.Fatalf("Written %d, Remaining %d; want 12, 0", w.Written(), w.Remaining())
		}
		if n, err := w.Write([]byte("x")); n != 0 || !errors.Is(err, io.ErrShortWrite) {
			t.Fatalf("Write past the end = %d, %v; want 0, ErrShortWrite", n, err)
		}
		if err := q.AddUsed(d.Mem(), c.Head(), w.Written()); err != nil {
			t.Fatal(err)
		}
		if got := d.Written(head); !bytes.Equal(got, []byte("abcdefghijkl")) {
			t.Fatalf("guest sees %q", got)
		}
		if u := d.Used(); len(u) != 1 || u[0].ID != uint32(head) || u[0].Len != 12 {
			t.Fatalf("used %+v", u)
		}
	}
}

func TestChainWriter_ShortWriteFillsWhatFits(t *testing.T) {
	q, d := newQueue(t, 1<<20, 8, 0)
	head := d.AddChain(nil, []int{2, 3})
	w := mustPop(t, q, d).Writer()
	n, err := w.Write([]byte("0123456789"))
	if n != 5 || !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("Write = %d, %v; want 5, ErrShortWrite", n, err)
	}
	if w.Written() != 5 {
		t.Fatalf("Written = %d", w.Written())
	}
	if got := d.Written(head); string(got) != "01234" {
		t.Fatalf("guest sees %q", got)
	}
}

// TestChainWriter_WriteByte: WriteByte writes the next writable byte,
// past empty and full buffers, counts it, and fails once none is left.
func TestChainWriter_WriteByte(t *testing.T) {
	q, d := newQueue(t, 1<<20, 8, 0)
	head := d.AddChain([][]byte{[]byte("hdr")}, []int{2, 0, 1})
	w := mustPop(t, q, d).Writer()
	if n, err := w.Write([]byte("ab")); n != 2 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if err := w.WriteByte('s'); err != nil {
		t.Fatalf("WriteByte: %v", err)
	}
	if w.Written() != 3 || w.Remaining() != 0 {
		t.Fatalf("Written %d, Remaining %d; want 3, 0", w.Written(), w.Remaining())
	}
	if err := w.WriteByte('x'); !errors.Is(err, io.ErrShortWrite) || w.Written() != 3 {
		t.Fatalf("WriteByte past the end = %v, Written %d; want ErrShortWrite, 3", err, w.Written())
	}
	if got := d.Written(head); string(got) != "abs" {
		t.Fatalf("guest sees %q", got)
	}
}

// TestChainReader_ReadsEndingOnBufferBoundaries: reads that end exactly
// where a buffer does, or inside one, carry on from the right byte.
func TestChainReader_ReadsEndingOnBufferBoundaries(t *testing.T) {
	q, d := newQueue(t, 1<<20, 8, 0)
	d.AddChain([][]byte{[]byte("0123"), []byte("45"), []byte("6789")}, nil)
	r := mustPop(t, q, d).Reader()
	var got []string
	for _, n := range []int{4, 1, 3, 2} {
		p := make([]byte, n)
		k, err := r.Read(p)
		if k != n || err != nil {
			t.Fatalf("Read(%d bytes) = %d, %v", n, k, err)
		}
		got = append(got, string(p))
	}
	if want := []string{"0123", "4", "567", "89"}; !slices.Equal(got, want) {
		t.Fatalf("read %q, want %q", got, want)
	}
	if n, err := r.Read(make([]byte, 1)); n != 0 || err != io.EOF || r.Remaining() != 0 {
		t.Fatalf("Read at the end = %d, %v, %d remaining", n, err, r.Remaining())
	}
}

// TestChainWriter_LeavesReadableBuffersAlone: the device writes only into
// device-writable buffers (§2.7.5.1).
func TestChainWriter_LeavesReadableBuffersAlone(t *testing.T) {
	q, d := newQueue(t, 1<<20, 8, 0)
	d.AddChain([][]byte{[]byte("keep")}, []int{4})
	c := mustPop(t, q, d)
	if _, err := c.Writer().Write([]byte("over")); err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(c.Reader())
	if string(got) != "keep" {
		t.Fatalf("readable buffer now %q", got)
	}
}

var _ io.Reader = (*virtio.Reader)(nil)
var _ io.Writer = (*virtio.Writer)(nil)
var _ io.ByteWriter = (*virtio.Writer)(nil)
