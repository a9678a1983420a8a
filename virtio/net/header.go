package net

import (
	"encoding/binary"
	"errors"
)

// HeaderSize is the size of struct virtio_net_hdr with VIRTIO_F_VERSION_1
// (§5.1.6): num_buffers is always there. A TAP with IFF_VNET_HDR and
// TUNSETVNETHDRSZ 12 reads and writes the same layout.
const HeaderSize = 12

// Offsets inside struct virtio_net_hdr; multi-byte fields little-endian.
const (
	hdrFlags      = 0  // u8 flags
	hdrGSOType    = 1  // u8 gso_type
	hdrHdrLen     = 2  // le16 hdr_len
	hdrGSOSize    = 4  // le16 gso_size
	hdrCsumStart  = 6  // le16 csum_start
	hdrCsumOffset = 8  // le16 csum_offset
	hdrNumBuffers = 10 // le16 num_buffers
)

// Header flags.
const (
	// HdrFNeedsCsum: the checksum from csum_start is partial.
	// VIRTIO_NET_HDR_F_NEEDS_CSUM.
	HdrFNeedsCsum uint8 = 1
	// HdrFDataValid: the device checked the checksum.
	// VIRTIO_NET_HDR_F_DATA_VALID.
	HdrFDataValid uint8 = 2
)

// Header GSO types.
const (
	GSONone  uint8 = 0    // VIRTIO_NET_HDR_GSO_NONE
	GSOTCPv4 uint8 = 1    // VIRTIO_NET_HDR_GSO_TCPV4
	GSOUDP   uint8 = 3    // VIRTIO_NET_HDR_GSO_UDP
	GSOTCPv6 uint8 = 4    // VIRTIO_NET_HDR_GSO_TCPV6
	GSOUDPL4 uint8 = 5    // VIRTIO_NET_HDR_GSO_UDP_L4
	GSOECN   uint8 = 0x80 // VIRTIO_NET_HDR_GSO_ECN, ORed into the type
)

const (
	// ethHeaderLen is the smallest frame: destination, source, type.
	ethHeaderLen = 14
	// MaxFrameSize bounds a frame: a 64 KiB TSO packet and its Ethernet
	// header, the most a TAP hands over or a driver sends.
	MaxFrameSize = 65550
	// MaxPacketSize bounds a packet, header and frame.
	MaxPacketSize = HeaderSize + MaxFrameSize
)

// Header is struct virtio_net_hdr.
type Header struct {
	Flags      uint8
	GSOType    uint8
	HdrLen     uint16
	GSOSize    uint16
	CsumStart  uint16
	CsumOffset uint16
	NumBuffers uint16
}

// ErrShortHeader: fewer than HeaderSize bytes.
var ErrShortHeader = errors.New("virtio-net header: fewer than 12 bytes")

// ParseHeader decodes the header at the start of b.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, ErrShortHeader
	}
	le := binary.LittleEndian
	return Header{
		Flags:      b[hdrFlags],
		GSOType:    b[hdrGSOType],
		HdrLen:     le.Uint16(b[hdrHdrLen:]),
		GSOSize:    le.Uint16(b[hdrGSOSize:]),
		CsumStart:  le.Uint16(b[hdrCsumStart:]),
		CsumOffset: le.Uint16(b[hdrCsumOffset:]),
		NumBuffers: le.Uint16(b[hdrNumBuffers:]),
	}, nil
}

// Append appends the encoded header to b.
func (h Header) Append(b []byte) []byte {
	le := binary.LittleEndian
	b = append(b, h.Flags, h.GSOType)
	b = le.AppendUint16(b, h.HdrLen)
	b = le.AppendUint16(b, h.GSOSize)
	b = le.AppendUint16(b, h.CsumStart)
	b = le.AppendUint16(b, h.CsumOffset)
	return le.AppendUint16(b, h.NumBuffers)
}

// Reasons a received packet cannot go to the driver.
var (
	errRXRunt    = errors.New("received packet shorter than a header and an Ethernet header")
	errRXTooBig  = errors.New("received packet larger than the maximum")
	errRXOffload = errors.New("received packet needs an offload the driver did not accept")
)

// prepareRX checks a received packet, header first, against what the
// driver negotiated and fixes the header up for it (§5.1.6.4.1): without
// GUEST_CSUM flags are zero, so a partial checksum cannot be delivered;
// each GSO type needs its GUEST_* bit; num_buffers is the device's to
// set, later. A TAP whose offloads follow the
// negotiation never trips these; another backend might.
func prepareRX(pkt []byte, features uint64) error {
	switch {
	case len(pkt) < HeaderSize+ethHeaderLen:
		return errRXRunt
	case len(pkt) > MaxPacketSize:
		return errRXTooBig
	}
	flags := pkt[hdrFlags] & (HdrFNeedsCsum | HdrFDataValid) // RSC_INFO needs RSC_EXT
	if features&FeatureGuestCsum == 0 {
		if flags&HdrFNeedsCsum != 0 {
			return errRXOffload
		}
		flags = 0
	}
	gso := pkt[hdrGSOType]
	var need uint64
	switch gso &^ GSOECN {
	case GSONone:
	case GSOTCPv4:
		need = FeatureGuestTSO4
	case GSOTCPv6:
		need = FeatureGuestTSO6
	default: // UDP (UFO) and UDP_L4 (USO) are not offered
		return errRXOffload
	}
	if gso&GSOECN != 0 {
		need |= FeatureGuestECN
		if gso == GSOECN { // ECN without a segmentation type
			return errRXOffload
		}
	}
	if features&need != need {
		return errRXOffload
	}
	pkt[hdrFlags] = flags
	return nil
}

// setNumBuffers writes num_buffers into the packet's header.
func setNumBuffers(pkt []byte, n uint16) {
	binary.LittleEndian.PutUint16(pkt[hdrNumBuffers:], n)
}
