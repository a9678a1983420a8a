package net

import (
	"io"

	"github.com/vmm-dev/vmm/virtio"
)

// transmit sends the packet in one transmit chain, header and frame
// (§5.1.6.2), as it is: the backend understands the header's checksum
// and GSO requests. It returns 0, the bytes written into the chain. A
// malformed chain or a packet the backend refuses is dropped, counted,
// and the queue goes on.
func (d *Device) transmit(c *virtio.Chain) uint32 {
	n := c.ReadableLen()
	switch {
	case c.WritableLen() != 0 || n < HeaderSize+ethHeaderLen:
		d.stats.txDropBadChain.Add(1)
		return 0
	case n > MaxPacketSize:
		d.stats.txDropTooBig.Add(1)
		return 0
	}
	p := d.txBuf[:n]
	if _, err := io.ReadFull(c.Reader(), p); err != nil {
		d.stats.txDropBadChain.Add(1) // unreachable: the chain was validated
		return 0
	}
	if err := d.backend.WritePacket(p); err != nil {
		d.stats.txDropBackend.Add(1)
		return 0
	}
	d.stats.txPackets.Add(1)
	d.stats.txBytes.Add(uint64(n - HeaderSize))
	return 0
}
