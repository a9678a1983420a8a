package virtio

import (
	"fmt"

	"github.com/vmm-dev/vmm/guestmem"
)

// Device IDs (§5).
const (
	IDNet     = 1
	IDBlock   = 2
	IDConsole = 3
	IDRNG     = 4
)

// Device is one virtio device, independent of its transport. The transport
// (PCI) owns feature negotiation, the status byte and the queue registers;
// the device says what it offers and does the work.
type Device interface {
	// ID is the virtio device ID (IDBlock, ...).
	ID() uint16
	// Features are the device-specific feature bits offered; the transport
	// adds VIRTIO_F_VERSION_1 and the ring features it supports.
	Features() uint64
	// QueueMaxSizes has one entry per virtqueue: its largest size.
	QueueMaxSizes() []uint16
	// ReadConfig and WriteConfig access the device-specific configuration
	// space (§4.1.4.6); offsets past its end read zero and ignore writes.
	ReadConfig(offset uint64, data []byte)
	WriteConfig(offset uint64, data []byte)
	// Activate starts the device when the driver sets DRIVER_OK, with the
	// negotiated features and the enabled queues (nil for a queue the
	// driver did not enable).
	Activate(mem *guestmem.Memory, features uint64, queues []*Queue, irq Interrupt) error
	// Notify processes queue q after the driver notified it. The transport
	// calls it from the device's own goroutine, never a vCPU thread, and
	// never concurrently with itself, Activate or Reset.
	Notify(q int) error
	// Reset returns the device to its initial state (the driver wrote 0 to
	// the status, or the device needs a reset); queues are reset by the
	// transport.
	Reset()
}

// Interrupt is how a device tells the driver a queue has used buffers; the
// transport maps it to an MSI-X vector or the INTx line and the ISR bits.
type Interrupt interface {
	Signal(q int) error
}

// Serve pops every available chain of queue qi, hands each to handle
// (which returns the bytes it wrote into the chain), returns the chains to
// the driver, and interrupts it if the ring's notification rules (EVENT_IDX,
// or the NO_INTERRUPT flag) ask for it. A broken queue ends it with an error
// that unwraps to ErrNeedsReset. Every chain is popped into the queue's
// one Chain (PopInto), so handle must not keep c once it returns.
func Serve(q *Queue, mem *guestmem.Memory, irq Interrupt, qi int, handle func(*Chain) uint32) error {
	c := &q.served
	for {
		ok, err := q.PopInto(mem, c)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if err := q.AddUsed(mem, c.Head(), handle(c)); err != nil {
			return err
		}
	}
	need, err := q.NeedsNotification(mem)
	if err != nil || !need {
		return err
	}
	if err := irq.Signal(qi); err != nil {
		return fmt.Errorf("signal used buffers: %w", err)
	}
	return nil
}
