package vmlinux

import (
	"encoding/binary"
	"fmt"

	"github.com/pierrec/lz4/v4"

	"github.com/vmm-dev/vmm/boot"
)

// The LZ4 legacy frame the kernel's `lz4 -l` writes (lz4_Frame_format.md,
// "Legacy frame"): the magic, then blocks, each a 4-byte little-endian
// compressed size and an LZ4 block that decodes to at most 8 MiB. There is
// no end mark; the stream ends with the input. Another magic may start a
// concatenated frame.
//
// pierrec/lz4's Reader does read legacy frames, but it ends them by guessing
// (a block size equal to the running output total, the kernel's trailer) and
// by io.EOF between blocks, so a payload cut at a block boundary decodes
// "successfully"; it also copies every block through pooled buffers. The
// framing is a few lines, so it is done here, strictly, decoding each block
// straight into the output with pierrec's bounds-checked UncompressBlock.
const (
	lz4LegacyMagic     = 0x184C2102
	lz4LegacyBlockSize = 8 << 20
)

// unlz4Legacy fills out from the legacy-framed stream in src (the payload
// without its size trailer). It stops when out is full; anything left is
// ignored, as the kernel's own unlz4 does with padding.
func unlz4Legacy(src, out []byte) error {
	le := binary.LittleEndian
	if len(src) < 4 || le.Uint32(src) != lz4LegacyMagic {
		return &boot.PayloadError{Reason: "no LZ4 legacy frame magic"}
	}
	maxBlock := uint64(lz4.CompressBlockBound(lz4LegacyBlockSize))
	in, pos := src[4:], 0
	for pos < len(out) {
		if len(in) < 4 {
			return &boot.PayloadError{Reason: fmt.Sprintf(
				"stream ends after %d bytes, but the size trailer says %d: is it truncated?", pos, len(out))}
		}
		n := uint64(le.Uint32(in))
		in = in[4:]
		if n == lz4LegacyMagic {
			continue // a concatenated frame
		}
		if n == 0 || n > maxBlock {
			return &boot.PayloadError{Reason: fmt.Sprintf("block at output offset %#x has invalid compressed size %d", pos, n)}
		}
		if n > uint64(len(in)) {
			return &boot.PayloadError{Reason: fmt.Sprintf(
				"block at output offset %#x needs %d bytes, %d are left: is it truncated?", pos, n, len(in))}
		}
		dst := out[pos:min(pos+lz4LegacyBlockSize, len(out))]
		got, err := lz4.UncompressBlock(in[:n], dst)
		if err != nil {
			return &boot.PayloadError{Reason: fmt.Sprintf("block at output offset %#x", pos), Err: err}
		}
		if got == 0 {
			return &boot.PayloadError{Reason: fmt.Sprintf("block at output offset %#x decodes to nothing", pos)}
		}
		in, pos = in[n:], pos+got
	}
	return nil
}
