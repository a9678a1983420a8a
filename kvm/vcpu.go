package kvm

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// VCPU is a virtual CPU fd with its mmap'd kvm_run page. Run it from one
// locked OS thread.
type VCPU struct {
	fd  int
	id  int
	run []byte
}

// ID is the vCPU's index (its APIC ID).
func (c *VCPU) ID() int { return c.id }

// Close unmaps kvm_run and closes the vCPU fd.
func (c *VCPU) Close() error {
	var first error
	if c.run != nil {
		first = unix.Munmap(c.run)
		c.run = nil
	}
	if c.fd >= 0 {
		if err := unix.Close(c.fd); err != nil && first == nil {
			first = err
		}
		c.fd = -1
	}
	return first
}

// Run is KVM_RUN: it enters the guest and returns the decoded exit. An
// interrupted run (a signal, or immediate_exit set) returns an exit with
// Reason KVM_EXIT_INTR. The exit's Data aliases kvm_run and is valid until
// the next Run. A port or MMIO exit allocates nothing.
//
// KVM_RUN goes through the runtime's ordinary syscall path, not
// RawSyscall. A halted guest stays inside KVM_RUN until its next
// interrupt; under RawSyscall the runtime would take that for Go code
// running and keep the thread's P busy all the while. Its preemption
// signal does interrupt KVM_RUN, so a stop-the-world would wait one exit,
// not for ever, but other goroutines (device queues, timers) would wait up
// to 10 ms for a P whenever halted vCPUs held them all. What it would save,
// the runtime's syscall bookkeeping, is a fraction of a microsecond.
func (c *VCPU) Run() (Exit, error) {
	_, err := ioctl(c.fd, KVM_RUN, 0)
	if err != nil {
		// EAGAIN: a vCPU waiting for SIPI (an AP before the guest starts
		// it) took INIT or SIPI and changed its MP state without entering
		// the guest; the caller runs it again, as after a signal.
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			return Exit{Reason: KVM_EXIT_INTR}, nil
		}
		return Exit{}, fmt.Errorf("KVM_RUN on vCPU %d: %w", c.id, err)
	}
	return DecodeExit(c.run)
}

// SetImmediateExit sets kvm_run.immediate_exit: while set, KVM_RUN returns
// EINTR at once instead of entering the guest. Together with a signal to the
// vCPU thread it stops a running vCPU without a race.
func (c *VCPU) SetImmediateExit(v bool) { setImmediateExit(c.run, v) }

// GetRegs is KVM_GET_REGS.
func (c *VCPU) GetRegs() (Regs, error) {
	var r Regs
	if err := ioctlPtr(c.fd, KVM_GET_REGS, &r); err != nil {
		return r, fmt.Errorf("KVM_GET_REGS: %w", err)
	}
	return r, nil
}

// SetRegs is KVM_SET_REGS.
func (c *VCPU) SetRegs(r Regs) error {
	if err := ioctlPtr(c.fd, KVM_SET_REGS, &r); err != nil {
		return fmt.Errorf("KVM_SET_REGS: %w", err)
	}
	return nil
}

// GetSregs is KVM_GET_SREGS.
func (c *VCPU) GetSregs() (Sregs, error) {
	var s Sregs
	if err := ioctlPtr(c.fd, KVM_GET_SREGS, &s); err != nil {
		return s, fmt.Errorf("KVM_GET_SREGS: %w", err)
	}
	return s, nil
}

// SetSregs is KVM_SET_SREGS.
func (c *VCPU) SetSregs(s Sregs) error {
	if err := ioctlPtr(c.fd, KVM_SET_SREGS, &s); err != nil {
		return fmt.Errorf("KVM_SET_SREGS: %w", err)
	}
	return nil
}

// GetFPU is KVM_GET_FPU.
func (c *VCPU) GetFPU() (FPU, error) {
	var f FPU
	if err := ioctlPtr(c.fd, KVM_GET_FPU, &f); err != nil {
		return f, fmt.Errorf("KVM_GET_FPU: %w", err)
	}
	return f, nil
}

// SetFPU is KVM_SET_FPU.
func (c *VCPU) SetFPU(f FPU) error {
	if err := ioctlPtr(c.fd, KVM_SET_FPU, &f); err != nil {
		return fmt.Errorf("KVM_SET_FPU: %w", err)
	}
	return nil
}

// GetLAPIC is KVM_GET_LAPIC.
func (c *VCPU) GetLAPIC() (LAPICState, error) {
	var l LAPICState
	if err := ioctlPtr(c.fd, KVM_GET_LAPIC, &l); err != nil {
		return l, fmt.Errorf("KVM_GET_LAPIC: %w", err)
	}
	return l, nil
}

// SetLAPIC is KVM_SET_LAPIC.
func (c *VCPU) SetLAPIC(l LAPICState) error {
	if err := ioctlPtr(c.fd, KVM_SET_LAPIC, &l); err != nil {
		return fmt.Errorf("KVM_SET_LAPIC: %w", err)
	}
	return nil
}

// SetCPUID is KVM_SET_CPUID2.
func (c *VCPU) SetCPUID(entries []CPUIDEntry) error {
	buf := make([]byte, sizeofCPUID2Header+len(entries)*sizeofCPUIDEntry2)
	encodeStruct(buf, cpuid2Header{Nent: uint32(len(entries))})
	for i, e := range entries {
		encodeStruct(buf[sizeofCPUID2Header+i*sizeofCPUIDEntry2:], e)
	}
	if _, err := ioctlBuf(c.fd, KVM_SET_CPUID2, buf); err != nil {
		return fmt.Errorf("KVM_SET_CPUID2 (%d entries): %w", len(entries), err)
	}
	return nil
}

// GetMSRs is KVM_GET_MSRS for the given indices.
func (c *VCPU) GetMSRs(indices []uint32) ([]MSREntry, error) {
	entries := make([]MSREntry, len(indices))
	for i, idx := range indices {
		entries[i].Index = idx
	}
	buf := msrsBuf(entries)
	if _, err := ioctlBuf(c.fd, KVM_GET_MSRS, buf); err != nil {
		return nil, fmt.Errorf("KVM_GET_MSRS: %w", err)
	}
	for i := range entries {
		decodeStruct(buf[sizeofMSRsHeader+i*sizeofMSREntry:], &entries[i])
	}
	return entries, nil
}

// SetMSRs is KVM_SET_MSRS. KVM stops at the first MSR it refuses, so fewer
// set than asked is an error naming that MSR.
func (c *VCPU) SetMSRs(entries []MSREntry) error {
	if len(entries) == 0 {
		return nil
	}
	r, err := ioctlBuf(c.fd, KVM_SET_MSRS, msrsBuf(entries))
	if err != nil {
		return fmt.Errorf("KVM_SET_MSRS: %w", err)
	}
	if int(r) != len(entries) {
		return fmt.Errorf("KVM_SET_MSRS: KVM refused MSR %#x", entries[r].Index)
	}
	return nil
}

func msrsBuf(entries []MSREntry) []byte {
	buf := make([]byte, sizeofMSRsHeader+len(entries)*sizeofMSREntry)
	encodeStruct(buf, msrsHeader{Nmsrs: uint32(len(entries))})
	for i, e := range entries {
		encodeStruct(buf[sizeofMSRsHeader+i*sizeofMSREntry:], e)
	}
	return buf
}

// Translate is KVM_TRANSLATE: the guest physical address a linear address
// maps to under the vCPU's current page tables.
func (c *VCPU) Translate(linear uint64) (Translation, error) {
	t := Translation{LinearAddress: linear}
	if err := ioctlPtr(c.fd, KVM_TRANSLATE, &t); err != nil {
		return t, fmt.Errorf("KVM_TRANSLATE %#x: %w", linear, err)
	}
	return t, nil
}
