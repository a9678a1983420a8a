package net

import (
	"errors"
	"time"
)

// Backend moves packets between the device and the host. A packet is a
// HeaderSize-byte struct virtio_net_hdr followed by an Ethernet frame, the
// layout of a TAP with IFF_VNET_HDR. The device reads from one goroutine
// and writes from another, so reads and writes may run at once.
type Backend interface {
	// ReadPacket reads one packet into p, waiting until one arrives, and
	// returns its length; a packet longer than p may be cut to len(p).
	// Once the read deadline has passed it returns an error wrapping
	// os.ErrDeadlineExceeded, also from a call already waiting.
	ReadPacket(p []byte) (int, error)
	// TryReadPacket is ReadPacket without the wait: ErrNoPacket when
	// none is queued.
	TryReadPacket(p []byte) (int, error)
	// WritePacket sends one packet. The backend keeps no reference to p.
	WritePacket(p []byte) error
	// SetReadDeadline sets the deadline for ReadPacket and
	// TryReadPacket, as os.File does; the zero time means none.
	SetReadDeadline(t time.Time) error
	// SetOffloads gets the negotiated feature bits when the driver starts
	// the device, so the backend hands over only the partial checksums
	// and segmentation offload packets the driver accepts
	// (VIRTIO_NET_F_GUEST_*).
	SetOffloads(features uint64) error
	// Close releases the backend; a waiting ReadPacket returns.
	Close() error
}

// ErrNoPacket is TryReadPacket's answer when no packet is queued.
var ErrNoPacket = errors.New("no packet queued")
