package boot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"

	"github.com/ulikunitz/xz/lzma"
)

// An xz stream (xz-file-format-1.2.1.txt) as the kernel's scripts/xz_wrap.sh
// writes it: `xz --check=crc32 --x86 --lzma2=...`, so each block's filter
// chain is the x86 BCJ filter and then LZMA2. ulikunitz/xz's Reader only
// takes a lone LZMA2 filter, so the container is read here and only the
// LZMA2 chunks go to its lzma.Reader2; BCJ is undone in place afterwards.
// The index and footer only repeat sizes checked already: they are skipped.
var xzMagic = []byte{0xFD, '7', 'z', 'X', 'Z', 0x00}

const (
	xzStreamHeaderLen = 12
	xzFilterX86       = 0x04
	xzFilterLZMA2     = 0x21
	xzMaxFilters      = 4
	xzFlagCompSize    = 0x40 // block flags: compressed size present
	xzFlagUncompSize  = 0x80 // block flags: uncompressed size present
	xzFlagsReserved   = 0x3C
)

// xzBlock is what a block header says about the data after it.
type xzBlock struct {
	compSize, uncompSize int64 // -1: not given
	dictSize             uint64
	x86                  bool
	x86Start             uint32
}

// unxz fills out from the single xz stream at the start of src.
func unxz(src, out []byte) error {
	if len(src) < xzStreamHeaderLen || !bytes.HasPrefix(src, xzMagic) {
		return &PayloadError{Reason: "no xz stream header"}
	}
	flags := src[6:8]
	if crc32.ChecksumIEEE(flags) != binary.LittleEndian.Uint32(src[8:12]) {
		return &PayloadError{Reason: "xz stream header CRC mismatch"}
	}
	if flags[0] != 0 || flags[1] > 0x0F {
		return &PayloadError{Reason: fmt.Sprintf("xz stream flags %#x %#x are reserved", flags[0], flags[1])}
	}
	check := flags[1]
	r := bytes.NewReader(src[xzStreamHeaderLen:])
	pos := 0
	for {
		blockStart := r.Size() - int64(r.Len())
		b, err := r.ReadByte()
		if err != nil {
			return errXZTruncated(pos, len(out))
		}
		if b == 0 { // the index: no more blocks
			break
		}
		blk, err := readXZBlockHeader(r, b)
		if err != nil {
			return err
		}
		n, err := decodeXZBlock(r, blk, out[pos:])
		if err != nil {
			return err
		}
		if blk.x86 {
			unBCJX86(out[pos:pos+n], blk.x86Start)
		}
		if err := finishXZBlock(r, blockStart, check, out[pos:pos+n]); err != nil {
			return err
		}
		pos += n
	}
	if pos != len(out) {
		return errXZTruncated(pos, len(out))
	}
	return nil
}

func errXZTruncated(pos, want int) error {
	return &PayloadError{Reason: fmt.Sprintf(
		"stream ends after %d bytes, but the size trailer says %d: is it truncated?", pos, want)}
}

// readXZBlockHeader reads the block header whose size byte, b, was read.
func readXZBlockHeader(r *bytes.Reader, b byte) (*xzBlock, error) {
	hdr := make([]byte, (int(b)+1)*4)
	hdr[0] = b
	if _, err := io.ReadFull(r, hdr[1:]); err != nil {
		return nil, &PayloadError{Reason: "xz block header truncated"}
	}
	body := hdr[:len(hdr)-4]
	if crc32.ChecksumIEEE(body) != binary.LittleEndian.Uint32(hdr[len(hdr)-4:]) {
		return nil, &PayloadError{Reason: "xz block header CRC mismatch"}
	}
	flags := body[1]
	if flags&xzFlagsReserved != 0 {
		return nil, &PayloadError{Reason: fmt.Sprintf("xz block flags %#x are reserved", flags)}
	}
	hr := bytes.NewReader(body[2:])
	blk := &xzBlock{compSize: -1, uncompSize: -1}
	for _, f := range []struct {
		bit  byte
		into *int64
	}{{xzFlagCompSize, &blk.compSize}, {xzFlagUncompSize, &blk.uncompSize}} {
		if flags&f.bit == 0 {
			continue
		}
		v, err := readXZVarint(hr)
		if err != nil || v > 1<<62 {
			return nil, &PayloadError{Reason: "bad size in xz block header"}
		}
		*f.into = int64(v)
	}
	if err := readXZFilters(hr, int(flags&3)+1, blk); err != nil {
		return nil, err
	}
	for hr.Len() > 0 { // header padding
		if c, _ := hr.ReadByte(); c != 0 {
			return nil, &PayloadError{Reason: "non-zero xz block header padding"}
		}
	}
	return blk, nil
}

// readXZFilters accepts the chains the kernel uses: LZMA2, optionally
// after x86 BCJ. Anything else (ARM BCJ, delta, ...) is unsupported.
func readXZFilters(hr *bytes.Reader, count int, blk *xzBlock) error {
	for i := range count {
		id, err1 := readXZVarint(hr)
		size, err2 := readXZVarint(hr)
		if err1 != nil || err2 != nil || size > uint64(hr.Len()) {
			return &PayloadError{Reason: "bad filter flags in xz block header"}
		}
		props := make([]byte, size)
		_, _ = io.ReadFull(hr, props)
		last := i == count-1
		switch {
		case id == xzFilterX86 && !last && !blk.x86 && (size == 0 || size == 4):
			blk.x86 = true
			if size == 4 {
				blk.x86Start = binary.LittleEndian.Uint32(props)
			}
		case id == xzFilterLZMA2 && last && size == 1 && props[0] <= 40:
			blk.dictSize = lzma2DictSize(props[0])
		default:
			return &UnsupportedCompressionError{Format: fmt.Sprintf("xz with filter %#x at position %d of %d", id, i, count)}
		}
	}
	return nil
}

// lzma2DictSize decodes the LZMA2 dictionary-size property (xz format
// 5.3.1).
func lzma2DictSize(p byte) uint64 {
	if p == 40 {
		return 0xFFFFFFFF
	}
	return uint64(2|p&1) << (p/2 + 11)
}

// readXZVarint reads a multibyte integer (xz format 1.2): 7 bits a byte,
// low first, at most 9 bytes.
func readXZVarint(r io.ByteReader) (uint64, error) {
	var v uint64
	for i := range 9 {
		b, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		v |= uint64(b&0x7F) << (7 * i)
		if b&0x80 == 0 {
			if b == 0 && i > 0 {
				return 0, errors.New("non-minimal xz integer")
			}
			return v, nil
		}
	}
	return 0, errors.New("xz integer too long")
}

// decodeXZBlock decodes one block's LZMA2 chunks into dst and returns how
// many bytes they held. The dictionary is never larger than dst: nothing
// can refer further back than the block's own output.
func decodeXZBlock(r *bytes.Reader, blk *xzBlock, dst []byte) (int, error) {
	dict := int(min(blk.dictSize, uint64(max(len(dst), lzma.MinDictCap))))
	dict = max(dict, lzma.MinDictCap)
	var in io.Reader = r
	if blk.compSize >= 0 {
		in = io.LimitReader(r, blk.compSize)
	}
	zr, err := lzma.Reader2Config{DictCap: dict}.NewReader2(in)
	if err != nil {
		return 0, err
	}
	n, err := io.ReadFull(zr, dst)
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		// The block ended before dst filled: the next block or the
		// final size check decides whether that is right.
	case err != nil:
		return 0, err
	default:
		var extra [1]byte
		if m, err := zr.Read(extra[:]); m > 0 {
			return 0, &PayloadError{Reason: "stream decodes to more than its size trailer says"}
		} else if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
	}
	if blk.uncompSize >= 0 && int64(n) != blk.uncompSize {
		return 0, &PayloadError{Reason: fmt.Sprintf("xz block decodes to %d bytes, its header says %d", n, blk.uncompSize)}
	}
	return n, nil
}

// finishXZBlock reads the block padding and check after the data and
// verifies the check over the block's output.
func finishXZBlock(r *bytes.Reader, blockStart int64, check byte, data []byte) error {
	for (r.Size()-int64(r.Len())-blockStart)%4 != 0 {
		if c, err := r.ReadByte(); err != nil || c != 0 {
			return &PayloadError{Reason: "bad xz block padding"}
		}
	}
	var h hash.Hash
	switch check {
	case 0x01:
		h = crc32.NewIEEE()
	case 0x04:
		h = crc64.New(crc64.MakeTable(crc64.ECMA))
	case 0x0A:
		h = sha256.New()
	}
	want := make([]byte, xzCheckSize(check))
	if _, err := io.ReadFull(r, want); err != nil {
		return &PayloadError{Reason: "xz block check truncated"}
	}
	if h == nil {
		return nil // none, or a type we cannot compute: skipped as xz -t does
	}
	h.Write(data)
	sum := h.Sum(nil)
	if check != 0x0A { // CRC32 and CRC64 are stored little-endian
		for i, j := 0, len(sum)-1; i < j; i, j = i+1, j-1 {
			sum[i], sum[j] = sum[j], sum[i]
		}
	}
	if !bytes.Equal(sum, want) {
		return &PayloadError{Reason: "xz block check mismatch"}
	}
	return nil
}

// xzCheckSize is the check field's length for a check type (xz format
// 3.1.3): 0 for none, then 4, 8, 16, 32, 64 bytes in groups of three.
func xzCheckSize(check byte) int {
	if check == 0 {
		return 0
	}
	return 4 << ((check - 1) / 3)
}

// unBCJX86 undoes the x86 BCJ filter over a whole block's output, which
// started at stream position start (xz-embedded xz_dec_bcj.c, bcj_x86).
// The encoder left the last four bytes alone, and so does this.
func unBCJX86(buf []byte, start uint32) {
	maskToAllowed := [8]bool{true, true, true, false, true, false, false, false}
	maskToBitNum := [8]uint32{0, 1, 2, 2, 3, 3, 3, 3}
	msByte := func(b byte) bool { return b == 0x00 || b == 0xFF }
	if len(buf) <= 4 {
		return
	}
	size := len(buf) - 4
	prevPos := -1
	var prevMask uint32
	for i := 0; i < size; i++ {
		if buf[i]&0xFE != 0xE8 {
			continue
		}
		d := i - prevPos
		if d > 3 {
			prevMask = 0
		} else {
			prevMask = (prevMask << (d - 1)) & 7
			if prevMask != 0 {
				b := buf[i+4-int(maskToBitNum[prevMask])]
				if !maskToAllowed[prevMask] || msByte(b) {
					prevPos = i
					prevMask = prevMask<<1 | 1
					continue
				}
			}
		}
		prevPos = i
		if !msByte(buf[i+4]) {
			prevMask = prevMask<<1 | 1
			continue
		}
		src := binary.LittleEndian.Uint32(buf[i+1:])
		var dest uint32
		for {
			dest = src - (start + uint32(i) + 5)
			if prevMask == 0 {
				break
			}
			j := maskToBitNum[prevMask] * 8
			if !msByte(byte(dest >> (24 - j))) {
				break
			}
			src = dest ^ (1<<(32-j) - 1)
		}
		dest &= 0x01FFFFFF
		dest |= -(dest & 0x01000000)
		binary.LittleEndian.PutUint32(buf[i+1:], dest)
		i += 4
	}
}
