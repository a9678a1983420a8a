package net

// Feature bits (virtio 1.2 §5.1.3), as masks over the feature word.
const (
	// FeatureCsum: the device takes packets with a partial checksum,
	// VIRTIO_NET_HDR_F_NEEDS_CSUM. VIRTIO_NET_F_CSUM, bit 0.
	FeatureCsum uint64 = 1 << 0
	// FeatureGuestCsum: the driver takes packets with a partial checksum.
	// VIRTIO_NET_F_GUEST_CSUM, bit 1.
	FeatureGuestCsum uint64 = 1 << 1
	// FeatureMAC: the configuration space holds the MAC address.
	// VIRTIO_NET_F_MAC, bit 5.
	FeatureMAC uint64 = 1 << 5
	// FeatureGuestTSO4: the driver takes TCP/IPv4 segmentation offload
	// packets. VIRTIO_NET_F_GUEST_TSO4, bit 7.
	FeatureGuestTSO4 uint64 = 1 << 7
	// FeatureGuestTSO6: the driver takes TCP/IPv6 segmentation offload
	// packets. VIRTIO_NET_F_GUEST_TSO6, bit 8.
	FeatureGuestTSO6 uint64 = 1 << 8
	// FeatureGuestECN: the driver takes TSO packets with ECN set.
	// VIRTIO_NET_F_GUEST_ECN, bit 9.
	FeatureGuestECN uint64 = 1 << 9
	// FeatureGuestUFO: the driver takes UDP fragmentation offload packets.
	// VIRTIO_NET_F_GUEST_UFO, bit 10. Not offered: named so the receive
	// path can refuse GSO_UDP packets.
	FeatureGuestUFO uint64 = 1 << 10
	// FeatureHostTSO4: the device takes TCP/IPv4 segmentation offload
	// packets. VIRTIO_NET_F_HOST_TSO4, bit 11.
	FeatureHostTSO4 uint64 = 1 << 11
	// FeatureHostTSO6: the device takes TCP/IPv6 segmentation offload
	// packets. VIRTIO_NET_F_HOST_TSO6, bit 12.
	FeatureHostTSO6 uint64 = 1 << 12
	// FeatureHostECN: the device takes TSO packets with ECN set.
	// VIRTIO_NET_F_HOST_ECN, bit 13.
	FeatureHostECN uint64 = 1 << 13
	// FeatureMrgRxbuf: one received packet may span several receive
	// chains, counted in num_buffers. VIRTIO_NET_F_MRG_RXBUF, bit 15.
	FeatureMrgRxbuf uint64 = 1 << 15
	// FeatureStatus: the configuration space holds the link status.
	// VIRTIO_NET_F_STATUS, bit 16.
	FeatureStatus uint64 = 1 << 16
)

// offeredFeatures is what Features returns. There is no control queue
// (VIRTIO_NET_F_CTRL_VQ), so no feature that needs one.
const offeredFeatures = FeatureCsum | FeatureGuestCsum | FeatureMAC |
	FeatureGuestTSO4 | FeatureGuestTSO6 | FeatureGuestECN |
	FeatureHostTSO4 | FeatureHostTSO6 | FeatureHostECN |
	FeatureMrgRxbuf | FeatureStatus

// guestOffloads are the negotiated bits that say which offloads the
// driver accepts on receive: what the backend may hand the device.
const guestOffloads = FeatureGuestCsum | FeatureGuestTSO4 | FeatureGuestTSO6 | FeatureGuestECN
