package net_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/vmm-dev/vmm/virtio/net"
)

func TestHeader_RoundTrip(t *testing.T) {
	h := net.Header{Flags: 1, GSOType: 0x84, HdrLen: 0x0201, GSOSize: 0x0403, CsumStart: 0x0605, CsumOffset: 0x0807, NumBuffers: 0x0a09}
	b := h.Append([]byte{0xaa})
	want := []byte{0xaa, 1, 0x84, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if !bytes.Equal(b, want) {
		t.Fatalf("Append = % x, want % x (little-endian, num_buffers last)", b, want)
	}
	got, err := net.ParseHeader(b[1:])
	if err != nil || got != h {
		t.Errorf("ParseHeader = %+v, %v", got, err)
	}
	if _, err := net.ParseHeader(b[1:net.HeaderSize]); !errors.Is(err, net.ErrShortHeader) {
		t.Errorf("11 bytes: %v", err)
	}
}
