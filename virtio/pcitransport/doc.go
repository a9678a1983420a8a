// Package pcitransport presents a virtio.Device to the guest as a modern
// (virtio 1.x, non-transitional) PCI function (virtio 1.2 §4.1), with no
// KVM: a configuration space for the PCI bus and one 32-bit memory BAR for
// the MMIO bus.
//
// BAR0 holds, each in its own 4 KiB page, the common configuration
// (§4.1.4.3), the ISR status (§4.1.4.5), the device configuration
// (§4.1.4.6) and the notify registers (§4.1.4.4, queue i at i*4), then the
// MSI-X table and PBA. Vendor capabilities of type COMMON, NOTIFY, ISR,
// DEVICE and PCI_CFG describe them; an MSI-X capability has one vector per
// queue plus one for configuration changes.
//
// The transport owns feature negotiation, the status state machine and
// the queue registers. The driver's mistakes never reach the host as
// panics: accesses of the wrong width are ignored, a queue configuration
// virtio.Queue rejects and a queue the device finds broken
// (virtio.ErrNeedsReset) set DEVICE_NEEDS_RESET (§2.1.2) until the driver
// resets the device.
//
// # Wiring
//
// The VMM puts the Transport on the PCI bus (it is a pci.Function), maps
// BAR0() on the MMIO bus where Config().OnBARChange says the guest placed
// it, may attach an ioeventfd at NotifyAddr(q) for each queue, and on the
// device goroutine calls ProcessQueue(q) for every notification, from an
// ioeventfd or OnNotify. Interrupts leave through OnMSI (per MSI-X vector)
// or OnINTx.
package pcitransport
