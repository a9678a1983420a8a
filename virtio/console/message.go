package console

import (
	"encoding/binary"
	"errors"
	"io"

	"github.com/vmm-dev/vmm/virtio"
)

// Control events (§5.3.6.2, virtio_console_control.event). The spec calls
// 1 and 2 DEVICE_ADD and DEVICE_REMOVE; Linux calls them PORT_ADD and
// PORT_REMOVE.
const (
	eventDeviceReady uint16 = 0 // driver: ready for control messages (value 1), or failed (0)
	eventPortAdd     uint16 = 1 // device: the port exists
	eventPortRemove  uint16 = 2 // device: the port is gone (never sent: ports are fixed)
	eventPortReady   uint16 = 3 // driver: the port is set up (value 1), or failed (0)
	eventConsolePort uint16 = 4 // device: the port is a console
	eventResize      uint16 = 5 // device: console size (never sent: no FeatureSize)
	eventPortOpen    uint16 = 6 // both: the sender's end is open (1) or closed (0)
	eventPortName    uint16 = 7 // device: the UTF-8 name follows, without NUL
)

// controlSize is sizeof(struct virtio_console_control): le32 id, le16
// event, le16 value.
const controlSize = 8

// badID is VIRTIO_CONSOLE_BAD_ID, the id Linux puts in DEVICE_READY,
// which names no port.
const badID = ^uint32(0)

// control is one struct virtio_console_control.
type control struct {
	id    uint32
	event uint16
	value uint16
}

// appendTo appends the message, then extra (a port's name), to b.
func (m control) appendTo(b []byte, extra string) []byte {
	b = binary.LittleEndian.AppendUint32(b, m.id)
	b = binary.LittleEndian.AppendUint16(b, m.event)
	b = binary.LittleEndian.AppendUint16(b, m.value)
	return append(b, extra...)
}

// errControlSize: a driver's control chain is not one message.
var errControlSize = errors.New("control message is not 8 device-readable bytes")

// parseControl reads the message in a chain of the control transmitq.
// Every driver sends exactly one message per chain and nothing the
// device could write, so anything else is malformed.
func parseControl(c *virtio.Chain) (control, error) {
	if c.ReadableLen() != controlSize || c.WritableLen() != 0 {
		return control{}, errControlSize
	}
	var b [controlSize]byte
	if _, err := io.ReadFull(c.Reader(), b[:]); err != nil {
		return control{}, err // unreachable: the chain was validated
	}
	return control{
		id:    binary.LittleEndian.Uint32(b[0:]),
		event: binary.LittleEndian.Uint16(b[4:]),
		value: binary.LittleEndian.Uint16(b[6:]),
	}, nil
}

// boolValue is a message's value for a flag.
func boolValue(v bool) uint16 {
	if v {
		return 1
	}
	return 0
}
