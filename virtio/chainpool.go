package virtio

// ChainPool keeps the chains a device has returned to the driver, to pop
// into again (Queue.PopInto), so a device that holds chains past one call
// allocates none per request. It is not safe for concurrent use: the
// device's lock or goroutine guards it. The zero value is an empty pool.
type ChainPool struct{ free []*Chain }

// Take returns a chain to pop into: a kept one, or a new one.
func (p *ChainPool) Take() *Chain {
	n := len(p.free)
	if n == 0 {
		return new(Chain)
	}
	c := p.free[n-1]
	p.free[n-1] = nil
	p.free = p.free[:n-1]
	return c
}

// Put keeps c, whose request the driver has back, for a later Take.
func (p *ChainPool) Put(c *Chain) { p.free = append(p.free, c) }

// Drop forgets every kept chain: they name buffers of guest memory that a
// reset device no longer uses.
func (p *ChainPool) Drop() {
	clear(p.free)
	p.free = p.free[:0]
}
