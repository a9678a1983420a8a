package kvm

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// VM is a KVM virtual machine fd.
type VM struct {
	fd      int
	runSize int
}

// Close closes the VM fd. The kernel frees the VM once every vCPU fd is
// closed too.
func (vm *VM) Close() error {
	if vm.fd < 0 {
		return nil
	}
	err := unix.Close(vm.fd)
	vm.fd = -1
	return err
}

// CheckExtension is KVM_CHECK_EXTENSION on the VM (some capabilities, such
// as KVM_CAP_MAX_VCPUS, are per VM).
func (vm *VM) CheckExtension(capability int) int {
	r, err := ioctl(vm.fd, KVM_CHECK_EXTENSION, uintptr(capability))
	if err != nil {
		return 0
	}
	return int(r)
}

// SetTSSAddr is KVM_SET_TSS_ADDR: three pages of guest physical address
// space Intel's VMX needs for real-mode emulation, outside RAM.
func (vm *VM) SetTSSAddr(addr uint64) error {
	if _, err := ioctl(vm.fd, KVM_SET_TSS_ADDR, uintptr(addr)); err != nil {
		return fmt.Errorf("KVM_SET_TSS_ADDR: %w", err)
	}
	return nil
}

// SetIdentityMapAddr is KVM_SET_IDENTITY_MAP_ADDR: one page for VMX's
// identity page table, outside RAM.
func (vm *VM) SetIdentityMapAddr(addr uint64) error {
	if err := ioctlPtr(vm.fd, KVM_SET_IDENTITY_MAP_ADDR, &addr); err != nil {
		return fmt.Errorf("KVM_SET_IDENTITY_MAP_ADDR: %w", err)
	}
	return nil
}

// CreateIRQChip is KVM_CREATE_IRQCHIP: in-kernel PIC, IOAPIC and LAPICs.
func (vm *VM) CreateIRQChip() error {
	if _, err := ioctl(vm.fd, KVM_CREATE_IRQCHIP, 0); err != nil {
		return fmt.Errorf("KVM_CREATE_IRQCHIP: %w", err)
	}
	return nil
}

// CreatePIT2 is KVM_CREATE_PIT2: the in-kernel i8254 timer.
func (vm *VM) CreatePIT2() error {
	cfg := PITConfig{}
	if err := ioctlPtr(vm.fd, KVM_CREATE_PIT2, &cfg); err != nil {
		return fmt.Errorf("KVM_CREATE_PIT2: %w", err)
	}
	return nil
}

// SetPITReinject is KVM_REINJECT_CONTROL: with reinjection on (KVM's
// default) the in-kernel PIT delivers every tick a slow guest missed, later;
// off, missed ticks are dropped, as on real hardware.
func (vm *VM) SetPITReinject(on bool) error {
	c := ReinjectControl{}
	if on {
		c.PITReinject = 1
	}
	if err := ioctlPtr(vm.fd, KVM_REINJECT_CONTROL, &c); err != nil {
		return fmt.Errorf("KVM_REINJECT_CONTROL: %w", err)
	}
	return nil
}

// SetUserMemoryRegion is KVM_SET_USER_MEMORY_REGION.
func (vm *VM) SetUserMemoryRegion(r UserspaceMemoryRegion) error {
	if err := ioctlPtr(vm.fd, KVM_SET_USER_MEMORY_REGION, &r); err != nil {
		return fmt.Errorf("KVM_SET_USER_MEMORY_REGION slot %d at %#x (%d MiB): %w", r.Slot, r.GuestPhysAddr, r.MemorySize>>20, err)
	}
	return nil
}

// IRQLine is KVM_IRQ_LINE: set an in-kernel irqchip input pin's level.
func (vm *VM) IRQLine(irq uint32, high bool) error {
	l := IRQLevel{IRQ: irq}
	if high {
		l.Level = 1
	}
	if err := ioctlPtr(vm.fd, KVM_IRQ_LINE, &l); err != nil {
		return fmt.Errorf("KVM_IRQ_LINE %d: %w", irq, err)
	}
	return nil
}

// CreateVCPU is KVM_CREATE_VCPU, with its kvm_run page mapped.
func (vm *VM) CreateVCPU(id int) (*VCPU, error) {
	r, err := ioctl(vm.fd, KVM_CREATE_VCPU, uintptr(id))
	if err != nil {
		return nil, fmt.Errorf("KVM_CREATE_VCPU %d: %w", id, err)
	}
	fd := int(r)
	unix.CloseOnExec(fd)
	run, err := unix.Mmap(fd, 0, vm.runSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("mmap kvm_run of vCPU %d: %w", id, err)
	}
	if len(run) < runMinSize {
		unix.Munmap(run)
		unix.Close(fd)
		return nil, fmt.Errorf("kvm_run of vCPU %d is %d bytes, too small", id, len(run))
	}
	return &VCPU{fd: fd, id: id, run: run}, nil
}
