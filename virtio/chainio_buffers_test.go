package virtio_test

import (
	"bytes"
	"io"
	"testing"
)

// joined concatenates bufs and their lengths.
func joined(bufs [][]byte) ([]byte, []int) {
	var all []byte
	var lens []int
	for _, b := range bufs {
		all = append(all, b...)
		lens = append(lens, len(b))
	}
	return all, lens
}

// TestChainReader_BuffersSpanDescriptors: Buffers hands out the readable
// bytes in order, across descriptors (empty ones skipped), at most n
// bytes and maxBufs slices a call, and a later Read carries on after them.
func TestChainReader_BuffersSpanDescriptors(t *testing.T) {
	q, d := newQueue(t, 1<<20, 8, indirect)
	for _, add := range []func([][]byte, []int) uint16{d.AddChain, d.AddIndirectChain} {
		add([][]byte{[]byte("hel"), {}, []byte("lo, "), []byte("world")}, []int{1})
		r := mustPop(t, q, d).Reader()
		bufs, n, err := r.Buffers(nil, 5, 8)
		got, lens := joined(bufs)
		if err != nil || n != 5 || string(got) != "hello" || len(lens) != 2 || r.Remaining() != 7 {
			t.Fatalf("Buffers(5) = %q in %v, %d, %v; Remaining %d", got, lens, n, err, r.Remaining())
		}
		bufs, n, err = r.Buffers(bufs[:0], 100, 1)
		if got, _ := joined(bufs); err != nil || n != 2 || string(got) != ", " {
			t.Fatalf("Buffers(max 1) = %q, %d, %v", got, n, err)
		}
		rest, err := io.ReadAll(r)
		if err != nil || string(rest) != "world" {
			t.Fatalf("Read after Buffers = %q, %v", rest, err)
		}
		if bufs, n, err := r.Buffers(nil, 10, 8); len(bufs) != 0 || n != 0 || err != nil {
			t.Fatalf("Buffers at the end = %v, %d, %v", bufs, n, err)
		}
	}
}

// TestChainWriter_BuffersAliasGuestMemory: what the device puts into the
// slices Buffers returns is what the guest sees, the bytes count as
// written, and a later Write carries on after them. Buffers never goes
// past the writable bytes.
func TestChainWriter_BuffersAliasGuestMemory(t *testing.T) {
	q, d := newQueue(t, 1<<20, 8, 0)
	head := d.AddChain([][]byte{[]byte("request")}, []int{3, 0, 4, 5})
	c := mustPop(t, q, d)
	w := c.Writer()
	bufs, n, err := w.Buffers(nil, 9, 8)
	if err != nil || n != 9 || len(bufs) != 3 || w.Written() != 9 || w.Remaining() != 3 {
		t.Fatalf("Buffers = %d slices, %d, %v; Written %d, Remaining %d", len(bufs), n, err, w.Written(), w.Remaining())
	}
	src := []byte("abcdefghi")
	for _, b := range bufs {
		src = src[copy(b, src):]
	}
	if _, err := w.Write([]byte("jkl")); err != nil {
		t.Fatal(err)
	}
	if bufs, n, err := w.Buffers(nil, 1, 8); len(bufs) != 0 || n != 0 || err != nil {
		t.Fatalf("Buffers past the end = %v, %d, %v", bufs, n, err)
	}
	if got := d.Written(head); !bytes.Equal(got, []byte("abcdefghijkl")) {
		t.Fatalf("guest sees %q", got)
	}
	if got, _ := io.ReadAll(c.Reader()); string(got) != "request" {
		t.Fatalf("readable buffer now %q", got)
	}
}
