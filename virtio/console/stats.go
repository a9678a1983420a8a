package console

import "sync/atomic"

// Stats are the device's counters since New. RX is host to guest, TX
// guest to host, as the queues are named.
type Stats struct {
	Ports []PortStats // by port number

	// Driver control messages ignored, by reason.
	ControlMalformed uint64 // not 8 bytes, or a value other than 0 or 1
	ControlUnknown   uint64 // an event drivers do not send
	ControlBadPort   uint64 // a port the device does not have

	// ControlDropped counts device control messages dropped because too
	// many were waiting for control receive buffers.
	ControlDropped uint64
	// BadChains counts chains returned unused: device-readable buffers on
	// a receiveq, or too small for a control message.
	BadChains uint64
}

// PortStats are one port's counters.
type PortStats struct {
	RXBytes uint64 // put into the guest's receive buffers
	// RXBufferWaits counts the times input waited for the guest to post
	// receive buffers.
	RXBufferWaits uint64
	TXBytes       uint64 // taken by Out
	TXDropped     uint64 // lost: no Out, or it failed
	TXWriteErrors uint64 // failed writes to Out
}

type counters struct {
	controlMalformed, controlUnknown, controlBadPort atomic.Uint64
	controlDropped, badChains                        atomic.Uint64
}

type portCounters struct {
	rxBytes, rxBufferWaits            atomic.Uint64
	txBytes, txDropped, txWriteErrors atomic.Uint64
}

// Stats returns the device's counters; safe from any goroutine.
func (d *Device) Stats() Stats {
	s := Stats{
		ControlMalformed: d.stats.controlMalformed.Load(),
		ControlUnknown:   d.stats.controlUnknown.Load(),
		ControlBadPort:   d.stats.controlBadPort.Load(),
		ControlDropped:   d.stats.controlDropped.Load(),
		BadChains:        d.stats.badChains.Load(),
	}
	for _, p := range d.ports {
		c := &p.stats
		s.Ports = append(s.Ports, PortStats{
			RXBytes:       c.rxBytes.Load(),
			RXBufferWaits: c.rxBufferWaits.Load(),
			TXBytes:       c.txBytes.Load(),
			TXDropped:     c.txDropped.Load(),
			TXWriteErrors: c.txWriteErrors.Load(),
		})
	}
	return s
}
