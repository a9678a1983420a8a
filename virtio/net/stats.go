package net

import "sync/atomic"

// Stats are the device's counters since New. Bytes count frames, not
// the virtio-net header.
type Stats struct {
	RXPackets uint64 // packets delivered to the driver
	RXBytes   uint64
	TXPackets uint64 // packets the backend took
	TXBytes   uint64

	// RXBufferWaits counts the times a received packet had to wait for
	// the driver to post receive buffers.
	RXBufferWaits uint64
	// RXBadChains counts receive chains returned unused because they had
	// device-readable buffers or no room for a header.
	RXBadChains uint64

	// Received packets dropped, by reason.
	RXDropTooBig    uint64 // larger than the buffers the driver posted, or than MaxPacketSize
	RXDropMalformed uint64 // shorter than a header and an Ethernet header
	RXDropOffload   uint64 // a checksum or GSO offload the driver did not accept

	// Transmitted packets dropped, by reason.
	TXDropBadChain uint64 // writable buffers, or shorter than a header and an Ethernet header
	TXDropTooBig   uint64 // larger than MaxPacketSize
	TXDropBackend  uint64 // the backend refused it (a TAP that is down: EIO)
}

// counters are Stats as the device updates them: the transmit path on the
// transport's goroutine, the receive path on its own.
type counters struct {
	rxPackets, rxBytes, txPackets, txBytes       atomic.Uint64
	rxBufferWaits, rxBadChains                   atomic.Uint64
	rxDropTooBig, rxDropMalformed, rxDropOffload atomic.Uint64
	txDropBadChain, txDropTooBig, txDropBackend  atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		RXPackets:       c.rxPackets.Load(),
		RXBytes:         c.rxBytes.Load(),
		TXPackets:       c.txPackets.Load(),
		TXBytes:         c.txBytes.Load(),
		RXBufferWaits:   c.rxBufferWaits.Load(),
		RXBadChains:     c.rxBadChains.Load(),
		RXDropTooBig:    c.rxDropTooBig.Load(),
		RXDropMalformed: c.rxDropMalformed.Load(),
		RXDropOffload:   c.rxDropOffload.Load(),
		TXDropBadChain:  c.txDropBadChain.Load(),
		TXDropTooBig:    c.txDropTooBig.Load(),
		TXDropBackend:   c.txDropBackend.Load(),
	}
}

// rxDrop counts a received packet dropped for err, one of prepareRX's.
func (c *counters) rxDrop(err error) {
	switch err {
	case errRXTooBig:
		c.rxDropTooBig.Add(1)
	case errRXOffload:
		c.rxDropOffload.Add(1)
	default:
		c.rxDropMalformed.Add(1)
	}
}
