package vmlinux

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"

	"github.com/vmm-dev/vmm/boot"
)

// MaxSize caps what Extract will produce, so a hostile file cannot make
// the host allocate without bound. Distribution kernels decompress to
// 30-80 MiB.
const MaxSize = 512 << 20

// sizeTrailerLen is the little-endian uncompressed size that ends every x86
// payload: gzip's own ISIZE, or the build's size_append for the other
// formats (arch/x86/boot/compressed/Makefile; mkpiggy.c reads it as
// z_output_len). It is mod 2^32, which the cap keeps unambiguous.
const sizeTrailerLen = 4

// Compression is a payload's compression format, recognised by its magic.
type Compression string

const (
	CompressionGzip  Compression = "gzip"
	CompressionLZ4   Compression = "lz4"
	CompressionXZ    Compression = "xz"
	CompressionZstd  Compression = "zstd"
	CompressionBzip2 Compression = "bzip2"
	CompressionLZMA  Compression = "lzma"
	CompressionLZO   Compression = "lzo"
	CompressionNone  Compression = "none" // an ELF stored as is
)

// payloadMagics map the first bytes of a payload to its format. The lzma one
// is the properties byte lc=3 lp=0 pb=2 the kernel's `lzma -9` writes, then
// the low bytes of the dictionary size.
var payloadMagics = []struct {
	magic  []byte
	format Compression
}{
	{[]byte{0x1F, 0x8B}, CompressionGzip},
	{[]byte{0x02, 0x21, 0x4C, 0x18}, CompressionLZ4}, // legacy frame (lz4 -l)
	{[]byte{0xFD, '7', 'z', 'X', 'Z', 0x00}, CompressionXZ},
	{[]byte{0x28, 0xB5, 0x2F, 0xFD}, CompressionZstd},
	{[]byte("BZh"), CompressionBzip2},
	{[]byte{0x5D, 0x00, 0x00}, CompressionLZMA},
	{[]byte{0x89, 'L', 'Z', 'O', 0x00, 0x0D, 0x0A, 0x1A, 0x0A}, CompressionLZO},
	{[]byte{0x7F, 'E', 'L', 'F'}, CompressionNone},
}

// DetectCompression returns the format whose magic starts payload.
func DetectCompression(payload []byte) (Compression, error) {
	for _, m := range payloadMagics {
		if bytes.HasPrefix(payload, m.magic) {
			return m.format, nil
		}
	}
	n := min(len(payload), 6)
	return "", &boot.UnsupportedCompressionError{Format: fmt.Sprintf("unknown (magic % x)", payload[:n])}
}

// Extract returns the uncompressed kernel (an ELF vmlinux) inside the
// bzImage in kernel, which is size bytes long: the payload at
// payload_offset from the protected-mode code, payload_length bytes long
// (boot.rst), in gzip, LZ4 legacy or zstd. xz kernels use the x86 BCJ
// filter, which no Go xz library decodes; they get
// boot.ErrUnsupportedCompression, as do bzip2, lzma and lzo. A header with
// no payload gets boot.ErrNoPayload. The output never exceeds MaxSize.
func Extract(kernel io.ReaderAt, size int64) ([]byte, error) {
	return extract(kernel, size, MaxSize)
}

// extract is Extract with the output cap as a parameter, so tests and the
// fuzz target can use a small one.
func extract(kernel io.ReaderAt, size int64, limit uint64) ([]byte, error) {
	h, err := boot.ParseHeader(kernel, size)
	if err != nil {
		return nil, err
	}
	payload, err := readPayload(kernel, h, limit)
	if err != nil {
		return nil, err
	}
	format, err := DetectCompression(payload)
	if err != nil {
		return nil, err
	}
	switch format {
	case CompressionNone:
		return payload, nil
	case CompressionGzip, CompressionLZ4, CompressionZstd:
	default:
		// Before the size trailer: whatever it says, the guest must
		// decompress this kernel itself.
		return nil, &boot.UnsupportedCompressionError{Format: string(format)}
	}
	if len(payload) < sizeTrailerLen {
		return nil, &boot.PayloadError{Format: string(format), Reason: "too short for its size trailer"}
	}
	want := uint64(binary.LittleEndian.Uint32(payload[len(payload)-sizeTrailerLen:]))
	if want == 0 || want > limit {
		return nil, &boot.PayloadError{Format: string(format),
			Reason: fmt.Sprintf("size trailer says it decompresses to %d bytes; the limit is %d", want, limit)}
	}
	out := make([]byte, want)
	if err := decompress(format, payload, out); err != nil {
		return nil, err
	}
	return out, nil
}

// readPayload reads the payload_offset/payload_length window of the
// protected-mode kernel, checked against the file.
func readPayload(r io.ReaderAt, h *boot.Header, limit uint64) ([]byte, error) {
	off, n := uint64(h.PayloadOffset), uint64(h.PayloadLength)
	if n == 0 {
		return nil, boot.ErrNoPayload
	}
	if off+n > uint64(h.KernelSize) {
		return nil, &boot.PayloadError{Reason: fmt.Sprintf(
			"payload_offset %#x + payload_length %#x runs past the %d-byte protected-mode kernel", off, n, h.KernelSize)}
	}
	if n > limit {
		return nil, &boot.PayloadError{Reason: fmt.Sprintf("payload is %d bytes; the limit is %d", n, limit)}
	}
	b := make([]byte, n)
	if _, err := r.ReadAt(b, h.KernelOffset+int64(off)); err != nil {
		return nil, fmt.Errorf("read kernel payload: %w", err)
	}
	return b, nil
}

// decompress fills out, exactly, from payload. Decoders stop at the end of
// their stream; bytes after it (the size trailer, padding) are ignored.
func decompress(format Compression, payload, out []byte) error {
	var err error
	switch format {
	case CompressionGzip:
		err = gunzip(payload, out)
	case CompressionLZ4:
		err = unlz4Legacy(payload[:len(payload)-sizeTrailerLen], out)
	case CompressionZstd:
		err = unzstd(payload[:len(payload)-sizeTrailerLen], out)
	default:
		return &boot.UnsupportedCompressionError{Format: string(format)}
	}
	if err != nil {
		var pe *boot.PayloadError
		var ue *boot.UnsupportedCompressionError
		if errors.As(err, &ue) {
			return ue
		}
		if errors.As(err, &pe) {
			pe.Format = string(format)
			return pe
		}
		return &boot.PayloadError{Format: string(format), Reason: "corrupt stream", Err: err}
	}
	return nil
}

// readExactly fills out from r and then checks r ends there: the stream
// must decode to exactly the trailer's size. Reading to the end also makes
// gzip and zstd verify their checksums.
func readExactly(r io.Reader, out []byte) error {
	n, err := io.ReadFull(r, out)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return &boot.PayloadError{Reason: fmt.Sprintf(
				"stream ends after %d bytes, but the size trailer says %d: is it truncated?", n, len(out))}
		}
		return err
	}
	var extra [1]byte
	if n, err := r.Read(extra[:]); n > 0 {
		return &boot.PayloadError{Reason: fmt.Sprintf("stream decodes to more than the %d bytes its size trailer says", len(out))}
	} else if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

func gunzip(payload, out []byte) error {
	zr, err := gzip.NewReader(bytes.NewReader(payload))
	if err != nil {
		return err
	}
	// One member: what follows it is not part of the kernel.
	zr.Multistream(false)
	return readExactly(zr, out)
}

// zstdMaxWindow allows the 128 MiB window of the kernel's `zstd -22
// --ultra` when it compresses from a pipe, whatever the output size.
// DecodeAll uses the output itself as history, so the window costs no
// memory beyond out, and WithDecodeAllCapLimit stops it at cap(out).
const zstdMaxWindow = 1 << 30

func unzstd(payload, out []byte) error {
	d, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(zstdMaxWindow),
		zstd.WithDecoderMaxWindow(zstdMaxWindow),
		zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		return err
	}
	defer d.Close()
	got, err := d.DecodeAll(payload, out[:0:len(out)])
	if err != nil {
		return err
	}
	if len(got) != len(out) || &got[0] != &out[0] {
		return &boot.PayloadError{Reason: fmt.Sprintf(
			"stream decodes to %d bytes, but the size trailer says %d", len(got), len(out))}
	}
	return nil
}
