package pcitransport

import (
	"errors"
	"fmt"

	"github.com/vmm-dev/vmm/virtio"
)

// ErrNoSuchQueue is returned for a queue index the device does not have.
var ErrNoSuchQueue = errors.New("no such virtqueue")

// writeStatus handles a write to device_status (§2.1, §3.1.1). Zero resets
// the device. Otherwise bits are only ever added: FEATURES_OK is refused
// (stays clear) unless the negotiation is acceptable, DRIVER_OK unless
// FEATURES_OK is set and the device does not need a reset, and the first
// DRIVER_OK activates the device.
func (t *Transport) writeStatus(v uint8) {
	t.devMu.Lock()
	defer t.devMu.Unlock()
	if v == 0 {
		t.reset()
		return
	}
	t.mu.Lock()
	activate := t.updateStatus(v)
	features, queues := t.drvFeatures, t.enabledQueues()
	t.mu.Unlock()
	if !activate {
		return
	}
	// mu is released: the device may raise interrupts while it starts.
	err := t.dev.Activate(t.mem, features, queues, interrupt{t})
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.needsReset()
		return
	}
	t.active = true
}

// updateStatus applies a non-zero status write and reports whether it set
// DRIVER_OK. The caller holds t.mu.
func (t *Transport) updateStatus(v uint8) bool {
	old := t.status
	// The driver never clears a bit but by reset (§2.1.2), and
	// DEVICE_NEEDS_RESET is the device's to set.
	st := old | v&^StatusDeviceNeedsReset
	added := st &^ old
	if added&StatusFeaturesOK != 0 && !t.featuresAcceptable() {
		st &^= StatusFeaturesOK
	}
	if added&StatusDriverOK != 0 && (st&StatusFeaturesOK == 0 || st&StatusDeviceNeedsReset != 0) {
		st &^= StatusDriverOK
	}
	t.status = st
	return st&^old&StatusDriverOK != 0
}

// featuresAcceptable reports whether the device accepts the driver's
// features (§3.1.1 step 5): the driver has acknowledged the device,
// accepted VIRTIO_F_VERSION_1 (§6.1: a device may refuse a driver that
// does not), and set nothing the device did not offer. The caller holds
// t.mu.
func (t *Transport) featuresAcceptable() bool {
	const need = StatusAcknowledge | StatusDriver
	return t.status&need == need &&
		t.drvFeatures&virtio.FeatureVersion1 != 0 &&
		t.drvFeatures&^t.offered == 0
}

// enabledQueues returns the queues for Activate: nil where the driver did
// not enable one. The caller holds t.mu.
func (t *Transport) enabledQueues() []*virtio.Queue {
	qs := make([]*virtio.Queue, len(t.queues))
	for i, r := range t.qregs {
		if r.enabled {
			qs[i] = t.queues[i]
		}
	}
	return qs
}

// reset is a device reset (§2.1.1, §4.1.4.3.2): the device stops, then
// every queue and register returns to its initial state. The caller holds
// t.devMu.
func (t *Transport) reset() {
	// Without mu: the device may wait for goroutines that are raising an
	// interrupt.
	t.dev.Reset()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, q := range t.queues {
		q.Reset()
	}
	t.active = false
	t.resetRegs()
	t.isr = 0
	t.setINTx(false)
}

// resetRegs puts the registers as they are at reset. config_generation
// is kept: it only ever moves. The caller holds t.mu or has not published
// t yet.
func (t *Transport) resetRegs() {
	t.status = 0
	t.devFeatSel, t.drvFeatSel = 0, 0
	t.drvFeatures = 0
	t.configVector = NoVector
	t.queueSel = 0
	for i, q := range t.queues {
		t.qregs[i] = queueRegs{size: q.MaxSize(), vector: NoVector}
	}
}

// needsReset sets DEVICE_NEEDS_RESET and tells the driver with a
// configuration change interrupt (§2.1.2). The caller holds t.mu.
func (t *Transport) needsReset() {
	if t.status&StatusDeviceNeedsReset != 0 {
		return
	}
	t.status |= StatusDeviceNeedsReset
	t.raise(t.configVector, ISRConfig)
}

// HandleNotifyError turns an error from the device's Notify that unwraps
// to virtio.ErrNeedsReset into DEVICE_NEEDS_RESET and a configuration
// change interrupt, and reports whether it did. Other errors are the
// host's, not the driver's, and are left to the caller.
func (t *Transport) HandleNotifyError(err error) bool {
	if !errors.Is(err, virtio.ErrNeedsReset) {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.needsReset()
	return true
}

// ProcessQueue runs the device's Notify for queue q, serialised with
// Activate and Reset as virtio.Device requires, and passes its error
// through HandleNotifyError. The VMM calls it on the device goroutine,
// after an ioeventfd or OnNotify. It does nothing while the device is not
// active. The device's error, if any, is returned for logging.
func (t *Transport) ProcessQueue(q int) error {
	t.devMu.Lock()
	defer t.devMu.Unlock()
	if q < 0 || q >= len(t.queues) {
		return fmt.Errorf("virtio-pci: %w: %d", ErrNoSuchQueue, q)
	}
	if !t.active || !t.queues[q].Ready() {
		return nil
	}
	err := t.dev.Notify(q)
	t.HandleNotifyError(err)
	return err
}

// notify handles a write to queue q's notify register: unless the device
// is live and q enabled, the notification is dropped.
func (t *Transport) notify(q int) {
	t.mu.Lock()
	live := t.status&(StatusDriverOK|StatusDeviceNeedsReset) == StatusDriverOK && t.qregs[q].enabled
	t.mu.Unlock()
	if live && t.opts.OnNotify != nil {
		t.opts.OnNotify(q)
	}
}
