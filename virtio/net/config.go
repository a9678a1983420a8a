package net

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Offsets in the device configuration space, struct virtio_net_config
// (§5.1.4); multi-byte fields little-endian.
const (
	ConfigMAC    = 0 // u8 mac[6], with VIRTIO_NET_F_MAC
	ConfigStatus = 6 // le16 status, with VIRTIO_NET_F_STATUS
	// ConfigSize ends the space after status: max_virtqueue_pairs, mtu,
	// speed, duplex and the RSS fields belong to features this device
	// does not offer (MQ, MTU, SPEED_DUPLEX, RSS), and read as zero.
	ConfigSize = 8
)

// StatusLinkUp is the status bit saying the link is up.
// VIRTIO_NET_S_LINK_UP.
const StatusLinkUp uint16 = 1

// MAC is an Ethernet address.
type MAC [6]byte

// ErrBadMAC: the address cannot be a device's own (all zeros, or a
// multicast address, which Linux refuses and replaces at random).
var ErrBadMAC = errors.New("MAC address must be unicast and not all zeros")

func (m MAC) String() string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

// valid reports whether m can be a device's address.
func (m MAC) valid() bool { return m != MAC{} && m[0]&1 == 0 }

// RandomMAC reads a locally administered unicast address from src (the
// VMM passes a CSPRNG; tests a fixed reader), so each VM gets its own
// without a registry of assigned ones.
func RandomMAC(src io.Reader) (MAC, error) {
	var m MAC
	if _, err := io.ReadFull(src, m[:]); err != nil {
		return MAC{}, fmt.Errorf("random MAC: %w", err)
	}
	m[0] = m[0]&^1 | 2 // unicast, locally administered
	return m, nil
}

// buildConfig lays out struct virtio_net_config. The link is always up:
// the device does not follow the backend's carrier, and a TAP that is
// down just drops what is sent (TXDropBackend).
func buildConfig(mac MAC) [ConfigSize]byte {
	var c [ConfigSize]byte
	copy(c[ConfigMAC:], mac[:])
	binary.LittleEndian.PutUint16(c[ConfigStatus:], StatusLinkUp)
	return c
}
