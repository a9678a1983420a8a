package net

import "github.com/vmm-dev/vmm/virtio"

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
	// One Read takes every readable byte (the chain was validated), and,
	// not through io.Reader, the Reader stays off the heap.
	if got, _ := c.Reader().Read(p); got != len(p) {
		d.stats.txDropBadChain.Add(1) // unreachable
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
