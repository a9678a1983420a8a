package kvm

import (
	"fmt"
)

// Interrupt plumbing for devices that run off the vCPU threads: GSI routing
// (MSI and irqchip pins), irqfd (an eventfd write raises a GSI) and
// ioeventfd (a guest write to an address signals an eventfd without leaving
// the kernel).

// IRQFD is struct kvm_irqfd.
type IRQFD struct {
	FD         uint32
	GSI        uint32
	Flags      uint32
	ResampleFD uint32
	_          [16]uint8
}

// IOEventFD is struct kvm_ioeventfd.
type IOEventFD struct {
	Datamatch uint64
	Addr      uint64
	Len       uint32
	FD        int32
	Flags     uint32
	_         [36]uint8
}

// MSI is struct kvm_msi (KVM_SIGNAL_MSI).
type MSI struct {
	AddressLo uint32
	AddressHi uint32
	Data      uint32
	Flags     uint32
	DevID     uint32
	_         [12]uint8
}

// Flags and routing types.
const (
	KVM_IRQFD_FLAG_DEASSIGN = 1 << 0

	KVM_IOEVENTFD_FLAG_DATAMATCH = 1 << 0
	KVM_IOEVENTFD_FLAG_PIO       = 1 << 1
	KVM_IOEVENTFD_FLAG_DEASSIGN  = 1 << 2

	KVM_IRQ_ROUTING_IRQCHIP = 1
	KVM_IRQ_ROUTING_MSI     = 2

	KVM_IRQCHIP_PIC_MASTER = 0
	KVM_IRQCHIP_PIC_SLAVE  = 1
	KVM_IRQCHIP_IOAPIC     = 2

	// IOAPICPins is how many inputs KVM's in-kernel IOAPIC has.
	IOAPICPins = 24
)

// Route is one entry of the GSI routing table: an irqchip pin or an MSI.
type Route struct {
	GSI uint32
	// Exactly one of the following is used.
	IRQChip *IRQChipPin
	MSI     *MSIRoute
}

// IRQChipPin routes a GSI to a pin of the PIC or IOAPIC.
type IRQChipPin struct {
	Chip uint32 // KVM_IRQCHIP_*
	Pin  uint32
}

// MSIRoute routes a GSI to an MSI message.
type MSIRoute struct {
	AddressLo, AddressHi, Data uint32
}

// routingEntry is struct kvm_irq_routing_entry.
type routingEntry struct {
	GSI   uint32
	Type  uint32
	Flags uint32
	Pad   uint32
	U     [8]uint32
}

// DefaultIRQChipRoutes are the routes KVM installs with KVM_CREATE_IRQCHIP:
// GSIs 0-15 to both the PICs and the IOAPIC, 16-23 to the IOAPIC. Setting a
// routing table replaces them, so a table with MSI routes starts from these.
func DefaultIRQChipRoutes() []Route {
	var rs []Route
	for gsi := uint32(0); gsi < IOAPICPins; gsi++ {
		if gsi < 16 {
			chip := uint32(KVM_IRQCHIP_PIC_MASTER)
			if gsi >= 8 {
				chip = KVM_IRQCHIP_PIC_SLAVE
			}
			rs = append(rs, Route{GSI: gsi, IRQChip: &IRQChipPin{Chip: chip, Pin: gsi % 8}})
		}
		rs = append(rs, Route{GSI: gsi, IRQChip: &IRQChipPin{Chip: KVM_IRQCHIP_IOAPIC, Pin: gsi}})
	}
	return rs
}

// encodeRouting lays out struct kvm_irq_routing with its entries.
func encodeRouting(routes []Route) ([]byte, error) {
	buf := make([]byte, sizeofIRQRoutingHeader+len(routes)*sizeofIRQRoutingEntry)
	encodeStruct(buf, [2]uint32{uint32(len(routes)), 0})
	for i, r := range routes {
		e := routingEntry{GSI: r.GSI}
		switch {
		case r.IRQChip != nil && r.MSI == nil:
			e.Type = KVM_IRQ_ROUTING_IRQCHIP
			e.U[0], e.U[1] = r.IRQChip.Chip, r.IRQChip.Pin
		case r.MSI != nil && r.IRQChip == nil:
			e.Type = KVM_IRQ_ROUTING_MSI
			e.U[0], e.U[1], e.U[2] = r.MSI.AddressLo, r.MSI.AddressHi, r.MSI.Data
		default:
			return nil, fmt.Errorf("GSI %d: a route needs exactly one of IRQChip and MSI", r.GSI)
		}
		encodeStruct(buf[sizeofIRQRoutingHeader+i*sizeofIRQRoutingEntry:], e)
	}
	return buf, nil
}

// SetGSIRouting is KVM_SET_GSI_ROUTING: it replaces the whole table.
func (vm *VM) SetGSIRouting(routes []Route) error {
	buf, err := encodeRouting(routes)
	if err != nil {
		return err
	}
	if _, err := ioctlBuf(vm.fd, KVM_SET_GSI_ROUTING, buf); err != nil {
		return fmt.Errorf("KVM_SET_GSI_ROUTING (%d routes): %w", len(routes), err)
	}
	return nil
}

// AssignIRQFD is KVM_IRQFD: writes to eventfd fd raise GSI gsi.
func (vm *VM) AssignIRQFD(fd int, gsi uint32) error {
	r := IRQFD{FD: uint32(fd), GSI: gsi}
	if err := ioctlPtr(vm.fd, KVM_IRQFD, &r); err != nil {
		return fmt.Errorf("KVM_IRQFD gsi %d: %w", gsi, err)
	}
	return nil
}

// DeassignIRQFD undoes AssignIRQFD.
func (vm *VM) DeassignIRQFD(fd int, gsi uint32) error {
	r := IRQFD{FD: uint32(fd), GSI: gsi, Flags: KVM_IRQFD_FLAG_DEASSIGN}
	if err := ioctlPtr(vm.fd, KVM_IRQFD, &r); err != nil {
		return fmt.Errorf("KVM_IRQFD deassign gsi %d: %w", gsi, err)
	}
	return nil
}

// IOEventFD registration: a guest write of Len bytes to Addr (a port when
// PIO is set) signals the eventfd instead of exiting to the VMM.
type IOEventFDConfig struct {
	Addr      uint64
	Len       uint32 // 1, 2, 4 or 8; 0 matches any length
	PIO       bool
	Datamatch *uint64 // signal only for this value
}

func (c IOEventFDConfig) abi(fd int) IOEventFD {
	e := IOEventFD{Addr: c.Addr, Len: c.Len, FD: int32(fd)}
	if c.PIO {
		e.Flags |= KVM_IOEVENTFD_FLAG_PIO
	}
	if c.Datamatch != nil {
		e.Flags |= KVM_IOEVENTFD_FLAG_DATAMATCH
		e.Datamatch = *c.Datamatch
	}
	return e
}

// AssignIOEventFD is KVM_IOEVENTFD.
func (vm *VM) AssignIOEventFD(fd int, c IOEventFDConfig) error {
	e := c.abi(fd)
	if err := ioctlPtr(vm.fd, KVM_IOEVENTFD, &e); err != nil {
		return fmt.Errorf("KVM_IOEVENTFD at %#x: %w", c.Addr, err)
	}
	return nil
}

// DeassignIOEventFD undoes AssignIOEventFD with the same configuration.
func (vm *VM) DeassignIOEventFD(fd int, c IOEventFDConfig) error {
	e := c.abi(fd)
	e.Flags |= KVM_IOEVENTFD_FLAG_DEASSIGN
	if err := ioctlPtr(vm.fd, KVM_IOEVENTFD, &e); err != nil {
		return fmt.Errorf("KVM_IOEVENTFD deassign at %#x: %w", c.Addr, err)
	}
	return nil
}

// SignalMSI is KVM_SIGNAL_MSI: inject one MSI directly. It reports whether
// the guest accepted it (false: blocked, e.g. masked by the guest).
func (vm *VM) SignalMSI(addr uint64, data uint32) (bool, error) {
	m := MSI{AddressLo: uint32(addr), AddressHi: uint32(addr >> 32), Data: data}
	r, err := ioctlPtrResult(vm.fd, KVM_SIGNAL_MSI, &m)
	if err != nil {
		return false, fmt.Errorf("KVM_SIGNAL_MSI: %w", err)
	}
	return r > 0, nil
}
