package vmm

import (
	"fmt"

	"github.com/vmm-dev/vmm/internal/startuptrace"
	"github.com/vmm-dev/vmm/kvm"
)

// KVM's half of New: the CPUID table KVM supports, the in-kernel
// interrupt controllers and the vCPUs. These calls are among the slowest
// of start-up (KVM_GET_SUPPORTED_CPUID and KVM_SET_CPUID2 run CPUID on
// the host, KVM_CREATE_PIT2 starts a kernel thread) and are spent in the
// kernel, while loading the kernel image and building the devices and
// ACPI tables is the VMM's own work on guest memory, which needs the VM
// but makes no KVM call. So the two run side by side.
//
// Order matters: memory slots go in before the irqchip, whose creation
// installs IRQ routes (a slot added afterwards waits for an SRCU grace
// period, milliseconds on a loaded host); vCPUs come after the irqchip,
// which gives each its local APIC.

// vmSetup is KVM's half of New, running on a goroutine of its own.
type vmSetup struct {
	start chan bool     // New's word that the VM and its memory exist
	done  chan struct{} // closed when the goroutine has returned
	undo  cleanup       // what it made, to undo after New's own steps
	vcpus []*kvm.VCPU
	err   error
}

// startVMSetup starts the KVM half. It first asks KVM for the CPUID table
// it supports (KVM_GET_SUPPORTED_CPUID runs CPUID on the host some fifty
// times), while New creates the VM and maps its memory; told to proceed,
// it goes on with setUpVM. New calls proceed once and wait once, on every
// path; until wait returns, nothing the goroutine uses (the System, the
// VM, the memory) is closed.
func (m *Machine) startVMSetup() *vmSetup {
	s := &vmSetup{start: make(chan bool, 1), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		supported, err := m.sys.SupportedCPUID()
		if !<-s.start {
			return
		}
		if err == nil {
			s.vcpus, err = m.setUpVM(&s.undo, supported)
		}
		s.err = err
	}()
	return s
}

// proceed lets the KVM half go on once the VM and its memory exist (ok), or
// tells it to stop.
func (s *vmSetup) proceed(ok bool) { s.start <- ok }

// wait waits for the KVM half, hands what it made to m (its vCPUs, and
// undo steps that run before New's own), and reports its error.
func (s *vmSetup) wait(m *Machine) error {
	<-s.done
	m.undo.steps = append(m.undo.steps, s.undo.steps...)
	m.vcpus = s.vcpus
	return s.err
}

// setUpVM registers guest memory, creates the irqchip and PIT, and
// creates and sets up every vCPU but the boot vCPU's entry registers,
// which New sets once the kernel is loaded. It touches no Machine field
// New writes meanwhile: what it makes goes to the result and undo.
func (m *Machine) setUpVM(undo *cleanup, supported []kvm.CPUIDEntry) ([]*kvm.VCPU, error) {
	for i, r := range m.mem.HostRegions() {
		if err := m.vm.SetUserMemoryRegion(kvm.UserspaceMemoryRegion{
			Slot: uint32(i), GuestPhysAddr: uint64(r.Start), MemorySize: r.Size, UserspaceAddr: uint64(r.HostAddr),
		}); err != nil {
			return nil, err
		}
	}
	if err := m.setupIRQChip(); err != nil {
		return nil, err
	}
	startuptrace.Mark("irqchip")
	m.cfg.Profile.maskCPUID(supported)
	vcpus := make([]*kvm.VCPU, 0, m.cfg.CPUs)
	for i := 0; i < m.cfg.CPUs; i++ {
		c, err := m.vm.CreateVCPU(i)
		if err != nil {
			return vcpus, err
		}
		undo.add(c.Close)
		vcpus = append(vcpus, c)
		if err := setupVCPU(c, supported); err != nil {
			return vcpus, fmt.Errorf("set up vCPU %d: %w", i, err)
		}
	}
	startuptrace.Mark("vcpus-created")
	return vcpus, nil
}

func (m *Machine) setupIRQChip() error {
	if err := m.vm.SetTSSAddr(tssAddr); err != nil {
		return err
	}
	if m.vm.CheckExtension(kvm.KVM_CAP_SET_IDENTITY_MAP_ADDR) != 0 {
		if err := m.vm.SetIdentityMapAddr(identityMapAddr); err != nil {
			return err
		}
	}
	if err := m.vm.CreateIRQChip(); err != nil {
		return err
	}
	if err := m.vm.CreatePIT2(); err != nil {
		return err
	}
	if m.cfg.Profile.DropLostTicks && m.vm.CheckExtension(kvm.KVM_CAP_REINJECT_CONTROL) != 0 {
		return m.vm.SetPITReinject(false)
	}
	return nil
}
