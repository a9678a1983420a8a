package pcitransport

import "github.com/vmm-dev/vmm/virtio"

// PCI identity of a virtio 1.x (non-transitional) function (§4.1.2).
const (
	VendorID     = 0x1AF4 // PCI vendor ID of every virtio function
	DeviceIDBase = 0x1040 // PCI device ID: 0x1040 + the virtio device ID
	RevisionID   = 1      // "Revision ID of 1 or higher" marks a modern device (§4.1.2.1)
)

// Class codes (base class<<16 | subclass<<8 | programming interface), as
// the common VMMs present virtio functions; drivers match on vendor and
// device ID, so the class only helps tools like lspci.
const (
	ClassStorageOther = 0x018000 // mass storage controller, other: virtio-blk
	ClassEthernet     = 0x020000 // network controller, Ethernet: virtio-net
	ClassOther        = 0x00FF00 // QEMU's PCI_CLASS_OTHERS: every other device type
)

// interruptPinA is INTA#, the line used while MSI-X is disabled.
const interruptPinA = 1

// cfg_type values of struct virtio_pci_cap (§4.1.4).
const (
	capCommonCfg = 1 // VIRTIO_PCI_CAP_COMMON_CFG
	capNotifyCfg = 2 // VIRTIO_PCI_CAP_NOTIFY_CFG
	capISRCfg    = 3 // VIRTIO_PCI_CAP_ISR_CFG
	capDeviceCfg = 4 // VIRTIO_PCI_CAP_DEVICE_CFG
	capPCICfg    = 5 // VIRTIO_PCI_CAP_PCI_CFG
)

// Offsets in struct virtio_pci_cap, counted from the capability's start
// (§4.1.4); the bytes before capOffCfgType are the generic header.
const (
	capOffCfgType    = 3  // cfg_type
	capOffBAR        = 4  // bar
	capOffID         = 5  // id
	capOffOffset     = 8  // offset, le32
	capOffLength     = 12 // length, le32
	capOffNotifyMult = 16 // virtio_pci_notify_cap.notify_off_multiplier, le32
	capOffPCICfgData = 16 // virtio_pci_cfg_cap.pci_cfg_data[4]

	capBodySize   = 13 // virtio_pci_cap after cap_vndr, cap_next and cap_len
	capHeaderSize = 3  // cap_vndr, cap_next, cap_len
	pciCfgDataLen = 4  // size of pci_cfg_data
)

// Layout of BAR0: each structure in its own 4 KiB page at a fixed offset,
// so the VMM can place an ioeventfd on the notify page without touching
// the others, then the MSI-X table and PBA.
const (
	bar0Index = 0

	pageSize      = 0x1000
	commonOffset  = 0x0000 // struct virtio_pci_common_cfg
	isrOffset     = 0x1000 // ISR status byte
	deviceOffset  = 0x2000 // device-specific configuration
	notifyOffset  = 0x3000 // queue notify registers
	msixTableOff  = 0x4000 // MSI-X table; the PBA follows, page aligned
	deviceCfgSize = pageSize

	// NotifyOffMultiplier is notify_off_multiplier: queue i's notify
	// register is at notifyOffset + i*NotifyOffMultiplier (§4.1.4.4), since
	// queue_notify_off reads i.
	NotifyOffMultiplier = 4

	// MaxQueues is how many queues fit in the notify page.
	MaxQueues = pageSize / NotifyOffMultiplier

	isrLen = 1 // the ISR status structure is one byte
)

// Offsets of struct virtio_pci_common_cfg (§4.1.4.3).
const (
	regDeviceFeatureSelect = 0x00 // device_feature_select, le32, RW
	regDeviceFeature       = 0x04 // device_feature, le32, RO
	regDriverFeatureSelect = 0x08 // driver_feature_select, le32, RW
	regDriverFeature       = 0x0C // driver_feature, le32, RW
	regConfigMSIXVector    = 0x10 // config_msix_vector, le16, RW
	regNumQueues           = 0x12 // num_queues, le16, RO
	regDeviceStatus        = 0x14 // device_status, u8, RW
	regConfigGeneration    = 0x15 // config_generation, u8, RO
	regQueueSelect         = 0x16 // queue_select, le16, RW
	regQueueSize           = 0x18 // queue_size, le16, RW
	regQueueMSIXVector     = 0x1A // queue_msix_vector, le16, RW
	regQueueEnable         = 0x1C // queue_enable, le16, RW
	regQueueNotifyOff      = 0x1E // queue_notify_off, le16, RO
	regQueueDesc           = 0x20 // queue_desc, le64, RW
	regQueueDriver         = 0x28 // queue_driver, le64, RW
	regQueueDevice         = 0x30 // queue_device, le64, RW

	// commonCfgLen is sizeof(struct virtio_pci_common_cfg) without the
	// queue_notify_data and queue_reset fields, whose features
	// (VIRTIO_F_NOTIF_CONFIG_DATA, VIRTIO_F_RING_RESET) are not offered.
	commonCfgLen = 0x38
)

// NoVector is VIRTIO_MSI_NO_VECTOR: no MSI-X vector for this source
// (§4.1.4.3, §4.1.5.1.2).
const NoVector = 0xFFFF

// Device status bits (§2.1).
const (
	StatusAcknowledge      = 1   // ACKNOWLEDGE: the guest found the device
	StatusDriver           = 2   // DRIVER: the guest knows how to drive it
	StatusDriverOK         = 4   // DRIVER_OK: the driver is ready
	StatusFeaturesOK       = 8   // FEATURES_OK: feature negotiation complete
	StatusDeviceNeedsReset = 64  // DEVICE_NEEDS_RESET: the device hit an error
	StatusFailed           = 128 // FAILED: the driver gave up on the device
)

// ISR status bits (§4.1.4.5).
const (
	ISRQueue  = 1 << 0 // queue interrupt
	ISRConfig = 1 << 1 // device configuration change interrupt
)

// Feature bits.
const (
	// transportFeatures are the bits the transport offers on every device:
	// the split-ring extensions virtio.Queue implements, and VERSION_1.
	transportFeatures = virtio.FeatureVersion1 | virtio.FeatureIndirectDesc | virtio.FeatureEventIdx

	// reservedFeatures are bits 24 to 41, reserved for the transport and
	// queue (§6); the transport decides them, not the device.
	reservedFeatures = (uint64(1)<<42 - 1) &^ (uint64(1)<<24 - 1)

	featureWords = 2 // device_feature_select / driver_feature_select 0 and 1
)

// classFor returns the class code for a virtio device ID.
func classFor(id uint16) uint32 {
	switch id {
	case virtio.IDBlock:
		return ClassStorageOther
	case virtio.IDNet:
		return ClassEthernet
	}
	return ClassOther
}
