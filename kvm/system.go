package kvm

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// DevicePath is where the KVM device lives.
const DevicePath = "/dev/kvm"

// ErrNoKVM wraps every failure to open /dev/kvm, so callers can tell the
// user how to get access.
var ErrNoKVM = errors.New("KVM is not available")

// System is an open /dev/kvm: the handle for system-wide ioctls and for
// creating VMs.
type System struct {
	fd int
}

// Open opens /dev/kvm and checks the API version.
func Open() (*System, error) {
	fd, err := unix.Open(DevicePath, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &OpenError{Path: DevicePath, Err: err}
	}
	s := &System{fd: fd}
	v, err := s.APIVersion()
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("KVM_GET_API_VERSION: %w", err)
	}
	if v != KVM_API_VERSION {
		s.Close()
		return nil, fmt.Errorf("KVM API version %d, want %d", v, KVM_API_VERSION)
	}
	return s, nil
}

// OpenError explains why /dev/kvm could not be opened, with a fix.
type OpenError struct {
	Path string
	Err  error
}

func (e *OpenError) Error() string {
	switch {
	case errors.Is(e.Err, os.ErrNotExist):
		return fmt.Sprintf("%s does not exist: load the KVM module (modprobe kvm_intel or kvm_amd) and enable virtualization in the firmware, or use a host with nested virtualization", e.Path)
	case errors.Is(e.Err, os.ErrPermission):
		return fmt.Sprintf("no permission to open %s: add your user to the kvm group (sudo usermod -aG kvm $USER, then log in again) or run as root", e.Path)
	}
	return fmt.Sprintf("open %s: %v", e.Path, e.Err)
}

func (e *OpenError) Unwrap() []error { return []error{ErrNoKVM, e.Err} }

// Close closes /dev/kvm. VMs created from it stay valid.
func (s *System) Close() error {
	if s.fd < 0 {
		return nil
	}
	err := unix.Close(s.fd)
	s.fd = -1
	return err
}

// APIVersion is KVM_GET_API_VERSION.
func (s *System) APIVersion() (int, error) {
	r, err := ioctl(s.fd, KVM_GET_API_VERSION, 0)
	return int(r), err
}

// CheckExtension is KVM_CHECK_EXTENSION: 0 when unsupported, otherwise a
// capability-specific positive value.
func (s *System) CheckExtension(capability int) int {
	r, err := ioctl(s.fd, KVM_CHECK_EXTENSION, uintptr(capability))
	if err != nil {
		return 0
	}
	return int(r)
}

// VCPUMmapSize is KVM_GET_VCPU_MMAP_SIZE: the size of each vCPU's kvm_run.
func (s *System) VCPUMmapSize() (int, error) {
	r, err := ioctl(s.fd, KVM_GET_VCPU_MMAP_SIZE, 0)
	return int(r), err
}

// SupportedCPUID is KVM_GET_SUPPORTED_CPUID: the CPUID leaves KVM can
// present to a guest.
func (s *System) SupportedCPUID() ([]CPUIDEntry, error) {
	buf := make([]byte, sizeofCPUID2Header+KVM_MAX_CPUID_ENTRIES*sizeofCPUIDEntry2)
	encodeStruct(buf, cpuid2Header{Nent: KVM_MAX_CPUID_ENTRIES})
	if _, err := ioctlBuf(s.fd, KVM_GET_SUPPORTED_CPUID, buf); err != nil {
		return nil, fmt.Errorf("KVM_GET_SUPPORTED_CPUID: %w", err)
	}
	var h cpuid2Header
	decodeStruct(buf, &h)
	n := min(int(h.Nent), KVM_MAX_CPUID_ENTRIES)
	out := make([]CPUIDEntry, n)
	for i := range out {
		decodeStruct(buf[sizeofCPUID2Header+i*sizeofCPUIDEntry2:], &out[i])
	}
	return out, nil
}

// CreateVM is KVM_CREATE_VM.
func (s *System) CreateVM() (*VM, error) {
	r, err := ioctl(s.fd, KVM_CREATE_VM, 0)
	if err != nil {
		return nil, fmt.Errorf("KVM_CREATE_VM: %w", err)
	}
	mmapSize, err := s.VCPUMmapSize()
	if err != nil {
		unix.Close(int(r))
		return nil, fmt.Errorf("KVM_GET_VCPU_MMAP_SIZE: %w", err)
	}
	unix.CloseOnExec(int(r))
	return &VM{fd: int(r), runSize: mmapSize}, nil
}
