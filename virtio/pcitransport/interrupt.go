package pcitransport

import (
	"fmt"

	"github.com/vmm-dev/vmm/devices/pci"
)

// interrupt is the virtio.Interrupt a device gets from Activate.
type interrupt struct{ t *Transport }

// Signal sends queue q's used buffer notification (§4.1.5.3): with MSI-X
// enabled, the vector queue_msix_vector names (none if NoVector);
// otherwise the queue bit of the ISR and INTA#.
func (i interrupt) Signal(q int) error {
	t := i.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if q < 0 || q >= len(t.qregs) {
		return fmt.Errorf("virtio-pci: %w: %d", ErrNoSuchQueue, q)
	}
	t.raise(t.qregs[q].vector, ISRQueue)
	return nil
}

// ConfigChanged is Transport.ConfigChanged, for a device that looks for
// the method on the Interrupt it was given (a virtio.Interrupt has only
// Signal).
func (i interrupt) ConfigChanged() { i.t.ConfigChanged() }

// ConfigChanged tells the driver the device configuration changed
// (§4.1.5.4): config_generation moves, so a driver reading across the
// change retries (§2.5.1), and a configuration change interrupt goes out.
func (t *Transport) ConfigChanged() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.generation++
	t.raise(t.configVector, ISRConfig)
}

// raise sends an interrupt: vector's message while MSI-X is enabled (none
// for NoVector; a masked vector is left pending), otherwise the isr bits
// and INTA#. The caller holds t.mu.
func (t *Transport) raise(vector uint16, isr uint8) {
	if t.msix.Enabled() {
		if vector == NoVector || t.msix.Notify(int(vector)) {
			return
		}
		// MSI-X was disabled in between: fall back to INTx.
	}
	t.isr |= isr
	t.setINTx(true)
}

// readISR reads and clears the ISR status, deasserting INTA# (§4.1.4.5).
func (t *Transport) readISR() uint8 {
	t.mu.Lock()
	defer t.mu.Unlock()
	v := t.isr
	t.isr = 0
	t.setINTx(false)
	return v
}

// setINTx drives INTA#, which COMMAND's Interrupt Disable keeps from
// being asserted. The caller holds t.mu.
func (t *Transport) setINTx(level bool) {
	t.cfg.SetINTxStatus(level)
	if level && t.cfg.Command()&pci.CmdINTxDisable != 0 {
		return
	}
	if level == t.intx {
		return
	}
	t.intx = level
	if t.opts.OnINTx != nil {
		t.opts.OnINTx(level)
	}
}

// fireMSI is the MSIX's delivery function.
func (t *Transport) fireMSI(vector int, msg pci.Message) {
	if t.opts.OnMSI != nil {
		t.opts.OnMSI(vector, msg.Addr, msg.Data)
	}
}
