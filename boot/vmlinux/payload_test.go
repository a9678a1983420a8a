package vmlinux

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"

	"github.com/vmm-dev/vmm/boot"
)

// compressFor returns data compressed the way the kernel's build does for
// format: the stream, then (except for gzip, whose ISIZE is the same thing)
// the uncompressed size as 4 little-endian bytes (size_append).
func compressFor(t testing.TB, format Compression, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch format {
	case CompressionGzip:
		w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		mustWrite(t, w, data)
		return buf.Bytes()
	case CompressionLZ4:
		w := lz4.NewWriter(&buf)
		if err := w.Apply(lz4.LegacyOption(true), lz4.CompressionLevelOption(lz4.Level9)); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, w, data)

	case CompressionZstd:
		w, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
		if err != nil {
			t.Fatal(err)
		}
		mustWrite(t, w, data)
	default:
		t.Fatalf("no compressor for %s", format)
	}
	return binary.LittleEndian.AppendUint32(buf.Bytes(), uint32(len(data)))
}

type writeCloser interface {
	Write([]byte) (int, error)
	Close() error
}

func mustWrite(t testing.TB, w writeCloser, data []byte) {
	t.Helper()
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// wrapPayload returns a bzImage whose protected-mode code is a 0x200-byte
// stub, then payload, with payload_offset/length (boot.rst) set.
func wrapPayload(payload []byte) []byte {
	const stub = 0x200
	b := boot.BuildBzImage(append(make([]byte, stub), payload...), boot.BzImageOptions{})
	binary.LittleEndian.PutUint32(b[0x248:], stub)
	binary.LittleEndian.PutUint32(b[0x24C:], uint32(len(payload)))
	return b
}

func extractBytes(b []byte, limit uint64) ([]byte, error) {
	return extract(bytes.NewReader(b), int64(len(b)), limit)
}

// compressible is test data with enough structure to compress and enough
// variety that a decoder bug shows, past one 8 MiB LZ4 legacy block.
func compressible(n int) []byte {
	b := make([]byte, n)
	x := uint32(1)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(i>>9) + byte(x&3)
	}
	return b
}

func TestExtractVmlinux_Formats_RoundTrip(t *testing.T) {
	for _, f := range []Compression{CompressionGzip, CompressionLZ4, CompressionZstd} {
		t.Run(string(f), func(t *testing.T) {
			data := compressible(300<<10 + 123)
			if f == CompressionLZ4 {
				data = compressible(9<<20 + 123) // two legacy blocks
			}
			got, err := extractBytes(wrapPayload(compressFor(t, f, data)), 64<<20)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("decoded %d bytes differ from the %d compressed", len(got), len(data))
			}
		})
	}
}

func TestExtractVmlinux_TrailingPadding_Ignored(t *testing.T) {
	data := compressible(5000)
	for _, f := range []Compression{CompressionGzip, CompressionLZ4} {
		t.Run(string(f), func(t *testing.T) {
			stream := compressFor(t, f, data)
			if f != CompressionGzip { // gzip's ISIZE is part of its stream
				stream = stream[:len(stream)-4]
			}
			// Padding between the stream and the size trailer.
			padded := append(append([]byte{}, stream...), make([]byte, 12)...)
			padded = binary.LittleEndian.AppendUint32(padded, uint32(len(data)))
			got, err := extractBytes(wrapPayload(padded), 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatal("decoded bytes differ")
			}
		})
	}
}

func TestExtractVmlinux_UncompressedELF_ReturnedAsIs(t *testing.T) {
	elf := testELF(t, defaultELF())
	got, err := extractBytes(wrapPayload(elf), 1<<20)
	if err != nil || !bytes.Equal(got, elf) {
		t.Fatalf("got %d bytes, %v", len(got), err)
	}
}

func TestExtractVmlinux_Unsupported_NamesFormat(t *testing.T) {
	tests := []struct {
		name, magic, want string
	}{
		{"bzip2", "BZh91AY&SY", "bzip2"},
		{"lzma", "\x5d\x00\x00\x80\x00", "lzma"},
		{"lzo", "\x89LZO\x00\x0d\x0a\x1a\x0a", "lzo"},
		{"unknown", "\xde\xad\xbe\xef\x01\x02\x03", "unknown (magic de ad be ef 01 02)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := extractBytes(wrapPayload([]byte(tt.magic+"\x10\x00\x00\x00")), 1<<20)
			var ue *boot.UnsupportedCompressionError
			if !errors.As(err, &ue) || ue.Format != tt.want || !errors.Is(err, boot.ErrUnsupportedCompression) {
				t.Fatalf("err = %v, want boot.UnsupportedCompressionError{%q}", err, tt.want)
			}
		})
	}
}

func TestExtractVmlinux_BadPayloads(t *testing.T) {
	data := compressible(100 << 10)
	lz := compressFor(t, CompressionLZ4, data)
	gz := compressFor(t, CompressionGzip, data)
	zs := compressFor(t, CompressionZstd, data)
	withTrailer := func(stream []byte, n uint32) []byte {
		return binary.LittleEndian.AppendUint32(append([]byte{}, stream...), n)
	}
	flip := func(b []byte, i int) []byte {
		c := append([]byte{}, b...)
		c[i] ^= 0x55
		return c
	}
	tests := []struct {
		name    string
		payload []byte
		limit   uint64
	}{
		{"lz4 truncated inside a block", withTrailer(lz[:len(lz)/2], uint32(len(data))), 1 << 20},
		{"lz4 truncated after the magic", withTrailer(lz[:4], uint32(len(data))), 1 << 20},
		{"lz4 block size past the end", withTrailer(append(lz[:4:4], 0xFF, 0xFF, 0, 0), uint32(len(data))), 1 << 20},
		{"lz4 trailer larger than the stream", withTrailer(lz[:len(lz)-4], uint32(len(data)+1)), 1 << 20},
		{"lz4 trailer smaller than the stream", withTrailer(lz[:len(lz)-4], uint32(len(data)-1)), 1 << 20},
		{"gzip truncated", withTrailer(gz[:len(gz)/2], uint32(len(data))), 1 << 20},
		{"gzip corrupt", flip(gz, len(gz)/2), 1 << 20},
		{"gzip bad crc", flip(gz, len(gz)-6), 1 << 20},
		{"zstd truncated", withTrailer(zs[:len(zs)/2], uint32(len(data))), 1 << 20},
		{"zstd trailer smaller than the stream", withTrailer(zs[:len(zs)-4], uint32(len(data)-10)), 1 << 20},
		{"output over the cap", lz, uint64(len(data) - 1)},
		{"trailer zero", withTrailer(lz[:len(lz)-4], 0), 1 << 20},
		{"shorter than a trailer", []byte{0x1F, 0x8B, 0}, 1 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := extractBytes(wrapPayload(tt.payload), tt.limit)
			if !errors.Is(err, boot.ErrBadPayload) {
				t.Fatalf("err = %v, want boot.ErrBadPayload", err)
			}
		})
	}
}

func TestExtractVmlinux_TrailerOverMaxSize_RejectedBeforeDecoding(t *testing.T) {
	p := binary.LittleEndian.AppendUint32([]byte{0x02, 0x21, 0x4C, 0x18}, MaxSize+1)
	b := wrapPayload(p)
	_, err := Extract(bytes.NewReader(b), int64(len(b)))
	if !errors.Is(err, boot.ErrBadPayload) {
		t.Fatalf("err = %v, want boot.ErrBadPayload", err)
	}
}

func TestExtractVmlinux_PayloadWindowOutsideFile(t *testing.T) {
	b := wrapPayload(compressFor(t, CompressionGzip, []byte("kernel")))
	tests := []struct {
		name        string
		off, length uint32
		want        error
	}{
		{"length zero", 0x200, 0, boot.ErrNoPayload},
		{"past the end", 0x200, 0x10000, boot.ErrBadPayload},
		{"offset wraps", 0xFFFFFFFF, 2, boot.ErrBadPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := append([]byte{}, b...)
			binary.LittleEndian.PutUint32(c[0x248:], tt.off)
			binary.LittleEndian.PutUint32(c[0x24C:], tt.length)
			if _, err := extractBytes(c, 1<<20); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestExtractVmlinux_NotABzImage(t *testing.T) {
	if _, err := extractBytes([]byte("hello"), 1<<20); !errors.Is(err, boot.ErrNotBzImage) {
		t.Fatalf("err = %v, want boot.ErrNotBzImage", err)
	}
}

func TestExtractVmlinux_XZ_Unsupported(t *testing.T) {
	payload := append([]byte{0xfd, '7', 'z', 'X', 'Z', 0}, make([]byte, 64)...)
	_, err := decompressFormat(payload)
	var ue *boot.UnsupportedCompressionError
	if !errors.As(err, &ue) || !errors.Is(err, boot.ErrUnsupportedCompression) || ue.Format != "xz" {
		t.Fatalf("xz payload: %v, want boot.UnsupportedCompressionError{xz}", err)
	}
}

// decompressFormat runs the detection and decoding ExtractVmlinux does.
func decompressFormat(payload []byte) ([]byte, error) {
	f, err := DetectCompression(payload)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 16)
	return out, decompress(f, payload, out)
}
