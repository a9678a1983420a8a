package blk

// Hooks for the external tests, which otherwise see the device only as a
// driver does, through the rings.

// WaitIdle waits until no worker runs; nothing is pending then, so every
// request popped so far has been returned (or dropped by Reset). It also
// orders the workers' writes to guest memory before the caller's reads.
func (d *Device) WaitIdle() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.running > 0 {
		d.idle.Wait()
	}
}

// Locked runs f with the device lock held, so a test can read the used
// ring while workers add to it.
func (d *Device) Locked(f func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f()
}

// Running is the number of worker goroutines alive.
func (d *Device) Running() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.running
}

// Resetting reports whether Reset is waiting for the workers.
func (d *Device) Resetting() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stopping
}

// Completing is the number of workers done with a request and waiting to
// return it.
func (d *Device) Completing() int { return int(d.completing.Load()) }

// Mincore is mincore(2) on m, for tests that check the page cache.
var Mincore = mincore
