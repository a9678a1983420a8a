package console

import (
	"encoding/binary"

	"github.com/vmm-dev/vmm/virtio"
)

// DeviceID is the virtio console's device ID (§5.3.1).
const DeviceID = virtio.IDConsole

// Feature bits (§5.3.3), as masks over the 64-bit feature word.
const (
	// FeatureSize says cols and rows are valid. VIRTIO_CONSOLE_F_SIZE, bit
	// 0; not offered, as nothing resizes a console yet.
	FeatureSize uint64 = 1 << 0
	// FeatureMultiport says max_nr_ports is valid and the control queues
	// are used. VIRTIO_CONSOLE_F_MULTIPORT, bit 1.
	FeatureMultiport uint64 = 1 << 1
	// FeatureEmergWrite says emerg_wr is valid. VIRTIO_CONSOLE_F_EMERG_WRITE,
	// bit 2; not offered.
	FeatureEmergWrite uint64 = 1 << 2
)

// Offsets in the device configuration space, struct virtio_console_config
// (§5.3.4); fields little-endian. cols comes before rows as Linux lays
// them out (spec drafts have listed rows first); both read zero here, as
// FeatureSize is not offered.
const (
	ConfigCols       = 0 // le16, with FeatureSize
	ConfigRows       = 2 // le16, with FeatureSize
	ConfigMaxNrPorts = 4 // le32, with FeatureMultiport
	ConfigEmergWr    = 8 // le32, with FeatureEmergWrite
	ConfigSize       = 12
)

// buildConfig lays out struct virtio_console_config for nports ports.
func buildConfig(nports int) [ConfigSize]byte {
	var c [ConfigSize]byte
	binary.LittleEndian.PutUint32(c[ConfigMaxNrPorts:], uint32(nports))
	return c
}
