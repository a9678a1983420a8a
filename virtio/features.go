package virtio

// Reserved feature bits shared by all device types (virtio 1.2 §6). The
// Feature* values are masks over the 64-bit feature word.
const (
	// FeatureIndirectDesc lets the driver use indirect descriptor tables
	// (§2.7.5.3). VIRTIO_F_INDIRECT_DESC, bit 28.
	FeatureIndirectDesc uint64 = 1 << 28
	// FeatureEventIdx enables the used_event and avail_event fields
	// (§2.7.7, §2.7.10). VIRTIO_F_EVENT_IDX, bit 29.
	FeatureEventIdx uint64 = 1 << 29
	// FeatureVersion1 marks a device compliant with virtio 1.x rather than
	// legacy. VIRTIO_F_VERSION_1, bit 32.
	FeatureVersion1 uint64 = 1 << 32
	// FeatureAccessPlatform says the device sits behind an IOMMU or similar
	// platform translation. VIRTIO_F_ACCESS_PLATFORM, bit 33.
	FeatureAccessPlatform uint64 = 1 << 33
	// FeatureRingPacked selects the packed virtqueue layout (§2.8), which
	// this package does not implement. VIRTIO_F_RING_PACKED, bit 34.
	FeatureRingPacked uint64 = 1 << 34
	// FeatureInOrder says buffers are used in the order they were made
	// available. VIRTIO_F_IN_ORDER, bit 35.
	FeatureInOrder uint64 = 1 << 35
)

// QueueFeatures is the subset of the feature bits that changes how a split
// virtqueue behaves; Config.Features ignores the others.
const QueueFeatures = FeatureIndirectDesc | FeatureEventIdx
