package console

import (
	"fmt"
	"io"

	"github.com/vmm-dev/vmm/virtio"
)

// txBufSize is how much of a chain goes to Out per Write: a Linux port
// write is at most 32 KiB, so one Write per chain.
const txBufSize = 64 << 10

// serveTX takes every chain off the port's transmitq and returns it once
// its bytes went to Out.
func (d *Device) serveTX(p *port) error {
	err := virtio.Serve(p.txq, d.mem, d.irq, TXQueue(p.id), func(c *virtio.Chain) uint32 {
		d.transmit(p, c)
		return 0
	})
	if err != nil {
		return fmt.Errorf("virtio-console: port %d transmitq: %w", p.id, err)
	}
	return nil
}

// transmit writes a chain's device-readable bytes to Out, in order
// (§5.3.6). Out holding the bytes holds the chain: the guest's ring fills
// and its writes wait, which is the back-pressure. A failed write loses
// the rest of the chain, counted: retrying could not succeed, and keeping
// the chain would stall the guest's port for good. Writable buffers (the
// driver's mistake, §5.3.6.1) are ignored.
func (d *Device) transmit(p *port, c *virtio.Chain) {
	r := c.Reader()
	if p.out == nil {
		p.stats.txDropped.Add(uint64(r.Remaining()))
		return
	}
	for r.Remaining() > 0 {
		n, _ := r.Read(d.txBuf) // cannot fail: the chain was validated
		w, err := p.out.Write(d.txBuf[:n])
		w = min(max(w, 0), n) // a writer breaking io.Writer's rules
		if err == nil && w < n {
			err = io.ErrShortWrite
		}
		p.stats.txBytes.Add(uint64(w))
		if err != nil {
			p.stats.txWriteErrors.Add(1)
			p.stats.txDropped.Add(uint64(n-w) + uint64(r.Remaining()))
			if !p.txErrorShown.Swap(true) {
				d.report(fmt.Errorf("virtio-console: port %d output: %w", p.id, err))
			}
			return
		}
	}
}
