package console

import (
	"errors"
	"fmt"

	"github.com/vmm-dev/vmm/virtio"
)

// ErrDriverSetup is what OnError hears when the driver reports that it
// failed to set up the device or a port (DEVICE_READY or PORT_READY 0):
// the guest will not see that port.
var ErrDriverSetup = errors.New("guest driver failed to set up the console")

// openChange is a change of the guest's end of a port, for OnGuestOpen.
type openChange struct {
	id   int
	open bool
}

// serveControl handles every message on the control transmitq (§5.3.6.2),
// returning each chain at once (Linux spins until it comes back), then
// sends the replies and tells the ports' owners what the guest opened or
// closed. Malformed messages are counted and ignored.
func (d *Device) serveControl() error {
	var changes []openChange
	var txErr error
	err := virtio.Serve(d.ctlTX, d.mem, d.irq, ControlTXQueue, func(c *virtio.Chain) uint32 {
		m, err := parseControl(c)
		if err != nil {
			d.stats.controlMalformed.Add(1)
			return 0
		}
		ch, err := d.handleControl(m)
		if ch != nil {
			changes = append(changes, *ch)
		}
		if txErr == nil {
			txErr = err
		}
		return 0
	})
	flushErr := d.ctl.flush()
	for _, ch := range changes {
		d.ports[ch.id].notifyOpen(ch.open)
	}
	if err != nil {
		return fmt.Errorf("virtio-console: control transmitq: %w", err)
	}
	if txErr != nil {
		return txErr
	}
	return flushErr
}

// handleControl acts on one driver message. It returns the change of a
// guest end it caused, if any, and the error of a transmitq it drained.
func (d *Device) handleControl(m control) (*openChange, error) {
	switch m.event {
	case eventDeviceReady:
		switch m.value {
		case 1:
			d.ctl.deviceReady()
		case 0:
			d.report(fmt.Errorf("virtio-console: %w: DEVICE_READY 0", ErrDriverSetup))
		default:
			d.stats.controlMalformed.Add(1)
		}
		return nil, nil
	case eventPortReady, eventPortOpen:
	default:
		d.stats.controlUnknown.Add(1)
		return nil, nil
	}
	if m.id >= uint32(len(d.ports)) {
		d.stats.controlBadPort.Add(1)
		return nil, nil
	}
	if m.value > 1 {
		d.stats.controlMalformed.Add(1)
		return nil, nil
	}
	id, on := int(m.id), m.value == 1
	if m.event == eventPortReady {
		if !on {
			d.report(fmt.Errorf("virtio-console: %w: PORT_READY 0 for port %d", ErrDriverSetup, id))
		}
		d.ctl.portReady(id, on)
		return nil, nil
	}
	return d.guestOpened(id, on)
}

// guestOpened records that the guest opened or closed its end of a port.
// Before a close is reported, what the guest wrote before closing is
// taken off the transmitq: the notification for it may be handled after
// this one, and the port's owner must see all of it first.
func (d *Device) guestOpened(id int, open bool) (*openChange, error) {
	p := d.ports[id]
	var err error
	if !open && p.txq != nil {
		err = d.serveTX(p)
	}
	changed := d.ctl.setGuestOpen(id, open)
	p.wake()
	if !changed {
		return nil, err
	}
	return &openChange{id: id, open: open}, err
}
