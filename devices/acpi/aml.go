package acpi

import (
	"encoding/binary"
	"fmt"
)

// AML opcodes and prefixes (ACPI 6.4 §20.2).
const (
	amlZeroOp         = 0x00
	amlOneOp          = 0x01
	amlNameOp         = 0x08
	amlBytePrefix     = 0x0A
	amlWordPrefix     = 0x0B
	amlDWordPrefix    = 0x0C
	amlQWordPrefix    = 0x0E
	amlScopeOp        = 0x10
	amlBufferOp       = 0x11
	amlPackageOp      = 0x12
	amlDualNamePrefix = 0x2E
	amlMultiNamePfx   = 0x2F
	amlExtOpPrefix    = 0x5B
	amlDeviceOp       = 0x82 // after amlExtOpPrefix
	amlRootChar       = '\\'
	amlParentPrefix   = '^'
	amlNullName       = 0x00
)

const (
	amlNameSegLen = 4
	// PkgLength (§20.2.4): one byte holds up to 63; with 1-3 following
	// bytes the lead byte keeps 4 bits, each following byte 8 more.
	pkgLenMax1   = 0x3F
	pkgLenMax    = 1<<28 - 1
	pkgLenShift  = 6 // lead byte bits 7-6: count of following bytes
	pkgLenNibble = 0x0F
)

// aml builds AML terms as byte slices. The first error sticks (as with
// bufio.Writer), so a table is written as one expression and checked once.
type aml struct{ err error }

func (a *aml) fail(err error) {
	if a.err == nil {
		a.err = err
	}
}

// The encoders build each term with one allocation, sized up front: a
// DSDT has a _PRT of 128 small packages, and start-up builds it for
// every VM.

// amlIntegerMax is the longest ComputationalData integer: a QWord.
const amlIntegerMax = 9

// amlInteger encodes v as the shortest ComputationalData (§20.2.3).
func amlInteger(v uint64) []byte { return appendInteger(make([]byte, 0, amlIntegerMax), v) }

func appendInteger(b []byte, v uint64) []byte {
	switch {
	case v == 0:
		return append(b, amlZeroOp)
	case v == 1:
		return append(b, amlOneOp)
	case v <= 0xFF:
		return append(b, amlBytePrefix, byte(v))
	case v <= 0xFFFF:
		return binary.LittleEndian.AppendUint16(append(b, amlWordPrefix), uint16(v))
	case v <= 0xFFFFFFFF:
		return binary.LittleEndian.AppendUint32(append(b, amlDWordPrefix), uint32(v))
	}
	return binary.LittleEndian.AppendUint64(append(b, amlQWordPrefix), v)
}

// pkgLenMaxBytes is the longest PkgLength: a lead byte and three more.
const pkgLenMaxBytes = 4

// appendPkgLength appends the PkgLength of a body of n bytes; the encoded
// value counts the PkgLength bytes themselves (§20.2.4).
func (a *aml) appendPkgLength(b []byte, n int) []byte {
	if n < 0 || n > pkgLenMax-pkgLenMaxBytes {
		a.fail(fmt.Errorf("aml: package body of %d bytes is too long", n))
		return b
	}
	if n+1 <= pkgLenMax1 {
		return append(b, byte(n+1))
	}
	follow := 1 // n is bounded above, so this stops by 3
	for n+1+follow >= 1<<(4+8*follow) {
		follow++
	}
	total := n + 1 + follow
	b = append(b, byte(follow<<pkgLenShift)|byte(total&pkgLenNibble))
	for i := range follow {
		b = append(b, byte(total>>(4+8*i)))
	}
	return b
}

// nameString encodes a NameString (§20.2.2): an optional root '\' or
// parent '^' prefixes, then dot-separated segments of up to four
// characters, padded with '_'.
func (a *aml) nameString(path string) []byte {
	var b []byte
	i := 0
	if i < len(path) && path[i] == amlRootChar {
		b, i = append(b, amlRootChar), i+1
	} else {
		for i < len(path) && path[i] == amlParentPrefix {
			b, i = append(b, amlParentPrefix), i+1
		}
	}
	rest := path[i:]
	if rest == "" {
		if len(b) == 0 {
			a.fail(fmt.Errorf("aml: empty name"))
		}
		return append(b, amlNullName)
	}
	var segs [][]byte
	for start := 0; start <= len(rest); {
		end := start
		for end < len(rest) && rest[end] != '.' {
			end++
		}
		seg, err := nameSeg(rest[start:end])
		if err != nil {
			a.fail(fmt.Errorf("aml: name %q: %w", path, err))
			return nil
		}
		segs = append(segs, seg)
		start = end + 1
	}
	switch {
	case len(segs) == 2:
		b = append(b, amlDualNamePrefix)
	case len(segs) > 2:
		if len(segs) > 0xFF {
			a.fail(fmt.Errorf("aml: name %q has too many segments", path))
			return nil
		}
		b = append(b, amlMultiNamePfx, byte(len(segs)))
	}
	for _, s := range segs {
		b = append(b, s...)
	}
	return b
}

// nameSeg validates one segment: LeadNameChar then NameChars (§20.2.2).
func nameSeg(s string) ([]byte, error) {
	if len(s) == 0 || len(s) > amlNameSegLen {
		return nil, fmt.Errorf("segment %q is not 1-4 characters", s)
	}
	seg := []byte("____")
	for i := 0; i < len(s); i++ {
		c := s[i]
		lead := c == '_' || (c >= 'A' && c <= 'Z')
		if !lead && (i == 0 || c < '0' || c > '9') {
			return nil, fmt.Errorf("segment %q: bad character %q", s, c)
		}
		seg[i] = c
	}
	return seg, nil
}

// pkg encodes op, then PkgLength, then the concatenated body.
func (a *aml) pkg(op []byte, body ...[]byte) []byte { return a.pkgHead(op, nil, body) }

// pkgHead encodes op, then PkgLength, then head and the body after it.
func (a *aml) pkgHead(op, head []byte, body [][]byte) []byte {
	n := len(head)
	for _, p := range body {
		n += len(p)
	}
	out := make([]byte, 0, len(op)+pkgLenMaxBytes+n)
	out = a.appendPkgLength(append(out, op...), n)
	out = append(out, head...)
	for _, p := range body {
		out = append(out, p...)
	}
	return out
}

// name encodes DefName: Name(path, obj) (§20.2.5.1).
func (a *aml) name(path string, obj []byte) []byte {
	ns := a.nameString(path)
	out := make([]byte, 0, 1+len(ns)+len(obj))
	return append(append(append(out, amlNameOp), ns...), obj...)
}

// scope encodes DefScope: Scope(path) { terms } (§20.2.5.1).
func (a *aml) scope(path string, terms ...[]byte) []byte {
	return a.pkgHead([]byte{amlScopeOp}, a.nameString(path), terms)
}

// device encodes DefDevice: Device(path) { terms } (§20.2.5.2).
func (a *aml) device(path string, terms ...[]byte) []byte {
	return a.pkgHead([]byte{amlExtOpPrefix, amlDeviceOp}, a.nameString(path), terms)
}

// pkgOf encodes DefPackage with a fixed element count (§20.2.5.4).
func (a *aml) pkgOf(elems ...[]byte) []byte {
	if len(elems) > 0xFF {
		a.fail(fmt.Errorf("aml: package of %d elements", len(elems)))
		return nil
	}
	count := [1]byte{byte(len(elems))}
	return a.pkgHead([]byte{amlPackageOp}, count[:], elems)
}

// integerPkgMax is the most integers appendIntegerPkg takes: six QWords
// and the count still fit a one-byte PkgLength.
const integerPkgMax = 6

// appendIntegerPkg appends DefPackage of the integers vals without
// building each element apart.
func (a *aml) appendIntegerPkg(b []byte, vals ...uint64) []byte {
	var body [1 + integerPkgMax*amlIntegerMax]byte
	if len(vals) > integerPkgMax {
		a.fail(fmt.Errorf("aml: integer package of %d elements", len(vals)))
		return b
	}
	inner := append(body[:0], byte(len(vals)))
	for _, v := range vals {
		inner = appendInteger(inner, v)
	}
	b = a.appendPkgLength(append(b, amlPackageOp), len(inner))
	return append(b, inner...)
}

// buffer encodes DefBuffer with its size as an integer (§20.2.5.4).
func (a *aml) buffer(data []byte) []byte {
	return a.pkg([]byte{amlBufferOp}, amlInteger(uint64(len(data))), data)
}

// eisaID encodes a compressed EISA ID such as "PNP0A08" as a DWord: three
// letters at five bits each, then four hex digits (ASL EISAID(), §19.6.35).
func (a *aml) eisaID(id string) []byte {
	if len(id) != 7 {
		a.fail(fmt.Errorf("aml: EISA ID %q is not 7 characters", id))
		return nil
	}
	var vendor uint16
	for i := range 3 {
		c := id[i]
		if c < 'A' || c > 'Z' {
			a.fail(fmt.Errorf("aml: EISA ID %q: bad vendor letter %q", id, c))
			return nil
		}
		vendor = vendor<<5 | uint16(c-'@')
	}
	var product uint16
	for i := 3; i < 7; i++ {
		d, ok := hexDigit(id[i])
		if !ok {
			a.fail(fmt.Errorf("aml: EISA ID %q: bad hex digit %q", id, id[i]))
			return nil
		}
		product = product<<4 | uint16(d)
	}
	// Stored big-endian within the DWord's bytes.
	b := []byte{byte(vendor >> 8), byte(vendor), byte(product >> 8), byte(product)}
	return amlInteger(uint64(binary.LittleEndian.Uint32(b)))
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
