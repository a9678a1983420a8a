package console

// Hooks for the external tests, which otherwise see the device only as a
// driver does, through the rings.

var waitNames = map[waitReason]string{
	waitInput: "input", waitOpen: "open", waitBuffers: "buffers", waitEnded: "ended",
	stopped: "stopped",
}

// FeederState says what port's feeder waits for while it is idle (parked
// with no kick on its way, so it touches guest memory no more until
// Notify, Reset or more input wakes it): "input", "open", "buffers" or
// "ended"; "stopped" once it gave up. Otherwise it is "busy", or "none"
// without a feeder.
// Seeing it idle orders the feeder's guest memory accesses before the
// caller's.
func (d *Device) FeederState(port int) string {
	p := d.ports[port]
	if p.feeder == nil {
		return "none"
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if name, ok := waitNames[p.waiting]; ok && (!p.kicked || p.waiting == stopped) {
		return name
	}
	return "busy"
}

// HostOpen reports the host end of port: false once its input ended and
// the guest had all of it.
func (d *Device) HostOpen(port int) bool { return d.ctl.hostOpen(port) }
