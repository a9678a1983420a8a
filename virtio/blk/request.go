// Package blk is the virtio block device (virtio 1.2 §5.2): request
// parsing as a pure function over a validated descriptor chain, a file
// backend, and the Device the transport drives.
//
// A request is framed by byte counts, not descriptor boundaries (§2.6.4):
// the first 16 device-readable bytes are the header, the last
// device-writable byte is the status, and what lies between is the data.
//
// Requests run on worker goroutines, several at once (inflight.go), except
// a lone one, which Notify runs itself to save the hand-off (runInline):
// tried without waiting where the host allows (RWF_NOWAIT), else with the
// blocking calls, timed, and handed to workers again for a while once
// those prove slow, so that a slow disk does not hold up the queue.
package blk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/vmm-dev/vmm/virtio"
)

// Request types (§5.2.6, struct virtio_blk_req's type).
const (
	TypeIn    uint32 = 0 // VIRTIO_BLK_T_IN: read sectors into the guest
	TypeOut   uint32 = 1 // VIRTIO_BLK_T_OUT: write sectors from the guest
	TypeFlush uint32 = 4 // VIRTIO_BLK_T_FLUSH: make earlier writes durable
	TypeGetID uint32 = 8 // VIRTIO_BLK_T_GET_ID: read the device ID string
)

// Status values, the request's last byte (§5.2.6).
const (
	StatusOK     byte = 0 // VIRTIO_BLK_S_OK
	StatusIOErr  byte = 1 // VIRTIO_BLK_S_IOERR
	StatusUnsupp byte = 2 // VIRTIO_BLK_S_UNSUPP
)

// Request framing (§5.2.6).
const (
	// HeaderSize is sizeof the le32 type, le32 reserved, le64 sector
	// that open every request.
	HeaderSize         = 16
	headerTypeOffset   = 0 // le32 type
	headerSectorOffset = 8 // le64 sector; le32 reserved sits at 4
	// StatusSize is the one status byte that closes every request.
	StatusSize = 1
	// SectorSize is the unit of sector and capacity, whatever blk_size
	// says (§5.2.4: "capacity ... in 512-byte sectors").
	SectorSize  = 512
	sectorShift = 9
	// IDBytes is the length of the GET_ID string (VIRTIO_BLK_ID_BYTES):
	// NUL-padded, with no terminator when it is 20 bytes long.
	IDBytes = 20
)

// Parse errors, one per way a request can be malformed. Every one becomes
// VIRTIO_BLK_S_IOERR except ErrUnsupported, which becomes UNSUPP.
var (
	ErrShortHeader   = errors.New("request header shorter than 16 readable bytes")
	ErrNoStatus      = errors.New("request has no device-writable byte for the status")
	ErrDataDirection = errors.New("request data in the wrong direction for its type")
	ErrDataLength    = errors.New("request data length not a multiple of 512")
	ErrOutOfRange    = errors.New("request sectors past the end of the disk")
	ErrIDTooSmall    = errors.New("GET_ID buffer shorter than 20 bytes")
	ErrUnsupported   = errors.New("unsupported request type")
)

// Request is a parsed, validated request. Its data lies after the header in
// the readable bytes (TypeOut) or before the status in the writable bytes
// (TypeIn, TypeGetID).
type Request struct {
	Type    uint32
	Sector  uint64 // first sector; meaningful for TypeIn and TypeOut
	DataLen uint32 // data bytes: a multiple of SectorSize for TypeIn/TypeOut, 0 for TypeFlush
}

// Offset is the byte offset of the request's first sector. ParseRequest
// checked that it fits an int64.
func (r Request) Offset() int64 { return int64(r.Sector << sectorShift) }

// ParseRequest reads and checks the request in chain against a disk of
// capacitySectors sectors. It reads the header and nothing else, and
// changes nothing. A chain with a header and a status byte but no other
// fault and an unknown type returns ErrUnsupported.
func ParseRequest(chain *virtio.Chain, capacitySectors uint64) (Request, error) {
	if chain.ReadableLen() < HeaderSize {
		return Request{}, fmt.Errorf("%w: %d bytes", ErrShortHeader, chain.ReadableLen())
	}
	// One Read fills hdr: a Reader reads across buffers until p is full.
	// Not io.ReadFull, whose interface argument would put the Reader and
	// hdr on the heap for every request.
	var hdr [HeaderSize]byte
	if n, _ := chain.Reader().Read(hdr[:]); n < HeaderSize {
		return Request{}, fmt.Errorf("read request header: %w", io.ErrUnexpectedEOF) // unreachable: the chain was validated
	}
	if chain.WritableLen() < StatusSize {
		return Request{}, ErrNoStatus
	}
	req := Request{
		Type:   binary.LittleEndian.Uint32(hdr[headerTypeOffset:]),
		Sector: binary.LittleEndian.Uint64(hdr[headerSectorOffset:]),
	}
	readData := chain.ReadableLen() - HeaderSize  // bytes after the header
	writeData := chain.WritableLen() - StatusSize // bytes before the status
	switch req.Type {
	case TypeIn:
		req.DataLen = writeData
		if readData != 0 {
			return Request{}, fmt.Errorf("%w: read with %d readable data bytes", ErrDataDirection, readData)
		}
		return checked(req, capacitySectors)
	case TypeOut:
		req.DataLen = readData
		if writeData != 0 {
			return Request{}, fmt.Errorf("%w: write with %d writable data bytes", ErrDataDirection, writeData)
		}
		return checked(req, capacitySectors)
	case TypeFlush:
		// §5.2.6: a flush carries no data.
		if readData != 0 || writeData != 0 {
			return Request{}, fmt.Errorf("%w: flush with %d readable and %d writable data bytes",
				ErrDataDirection, readData, writeData)
		}
		return req, nil
	case TypeGetID:
		req.DataLen = writeData
		if readData != 0 {
			return Request{}, fmt.Errorf("%w: GET_ID with %d readable data bytes", ErrDataDirection, readData)
		}
		if writeData < IDBytes {
			return Request{}, fmt.Errorf("%w: %d bytes", ErrIDTooSmall, writeData)
		}
		return req, nil
	}
	return Request{}, fmt.Errorf("%w: %d", ErrUnsupported, req.Type)
}

// checked returns req if its range is sound, else the zero Request.
func checked(req Request, capacitySectors uint64) (Request, error) {
	if err := checkRange(req, capacitySectors); err != nil {
		return Request{}, err
	}
	return req, nil
}

// checkRange checks an IN or OUT request's length and that its sectors lie
// inside the disk, with overflow-checked arithmetic: sector + DataLen/512
// may not wrap or pass capacity, and its byte offset must fit the int64
// that pread/pwrite take.
func checkRange(req Request, capacitySectors uint64) error {
	if req.DataLen%SectorSize != 0 {
		return fmt.Errorf("%w: %d bytes", ErrDataLength, req.DataLen)
	}
	n := uint64(req.DataLen) >> sectorShift
	if req.Sector > math.MaxUint64-n || req.Sector+n > min(capacitySectors, math.MaxInt64>>sectorShift) {
		return fmt.Errorf("%w: sector %d, %d sectors, capacity %d", ErrOutOfRange, req.Sector, n, capacitySectors)
	}
	return nil
}

// Status is the status byte a parse error earns (§5.2.6).
func Status(err error) byte {
	switch {
	case err == nil:
		return StatusOK
	case errors.Is(err, ErrUnsupported):
		return StatusUnsupp
	}
	return StatusIOErr
}

// dataReader reads a request's data: the chain's readable bytes after the
// header, which ParseRequest has read and checked are there.
func dataReader(c *virtio.Chain) *virtio.Reader {
	r := c.Reader()
	r.Skip(HeaderSize)
	return r
}
