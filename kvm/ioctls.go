// Package kvm is a typed wrapper over the /dev/kvm ioctls the VMM uses:
// System (the /dev/kvm fd) → VM → VCPU, each owning its file descriptor.
//
// Ioctl numbers are declared once below under their C names from
// <linux/kvm.h>; abi_test.go recomputes every one and every struct layout
// with the C compiler, so a typo cannot reach a real ioctl.
package kvm

// Linux's _IOC encoding (include/uapi/asm-generic/ioctl.h).
const (
	iocNone  = 0
	iocWrite = 1
	iocRead  = 2
)

func ioc(dir, typ, nr, size uintptr) uintptr {
	return dir<<30 | size<<16 | typ<<8 | nr
}

func io(nr uintptr) uintptr         { return ioc(iocNone, kvmio, nr, 0) }
func ior(nr, size uintptr) uintptr  { return ioc(iocRead, kvmio, nr, size) }
func iow(nr, size uintptr) uintptr  { return ioc(iocWrite, kvmio, nr, size) }
func iowr(nr, size uintptr) uintptr { return ioc(iocRead|iocWrite, kvmio, nr, size) }

const kvmio = 0xAE

// Sizes of the ABI structs (checked against C in abi_test.go).
const (
	sizeofUserspaceMemoryRegion = 32
	sizeofRegs                  = 144
	sizeofSregs                 = 312
	sizeofFPU                   = 416
	sizeofLAPICState            = 1024
	sizeofIRQLevel              = 8
	sizeofPITConfig             = 64
	sizeofCPUID2Header          = 8
	sizeofCPUIDEntry2           = 40
	sizeofMSRsHeader            = 8
	sizeofMSREntry              = 16
	sizeofTranslation           = 24
	sizeofReinjectControl       = 32
	sizeofIRQFD                 = 32
	sizeofIOEventFD             = 64
	sizeofMSI                   = 32
	sizeofIRQRoutingHeader      = 8
	sizeofIRQRoutingEntry       = 48
)

// Ioctl numbers, by their C names.
var (
	KVM_GET_API_VERSION        = io(0x00)
	KVM_CREATE_VM              = io(0x01)
	KVM_CHECK_EXTENSION        = io(0x03)
	KVM_GET_VCPU_MMAP_SIZE     = io(0x04)
	KVM_GET_SUPPORTED_CPUID    = iowr(0x05, sizeofCPUID2Header)
	KVM_CREATE_VCPU            = io(0x41)
	KVM_SET_USER_MEMORY_REGION = iow(0x46, sizeofUserspaceMemoryRegion)
	KVM_SET_TSS_ADDR           = io(0x47)
	KVM_SET_IDENTITY_MAP_ADDR  = iow(0x48, 8)
	KVM_CREATE_IRQCHIP         = io(0x60)
	KVM_IRQ_LINE               = iow(0x61, sizeofIRQLevel)
	KVM_CREATE_PIT2            = iow(0x77, sizeofPITConfig)
	KVM_REINJECT_CONTROL       = io(0x71)
	KVM_SET_GSI_ROUTING        = iow(0x6a, sizeofIRQRoutingHeader)
	KVM_IRQFD                  = iow(0x76, sizeofIRQFD)
	KVM_IOEVENTFD              = iow(0x79, sizeofIOEventFD)
	KVM_SIGNAL_MSI             = iow(0xa5, sizeofMSI)
	KVM_RUN                    = io(0x80)
	KVM_GET_REGS               = ior(0x81, sizeofRegs)
	KVM_SET_REGS               = iow(0x82, sizeofRegs)
	KVM_GET_SREGS              = ior(0x83, sizeofSregs)
	KVM_SET_SREGS              = iow(0x84, sizeofSregs)
	KVM_TRANSLATE              = iowr(0x85, sizeofTranslation)
	KVM_GET_MSRS               = iowr(0x88, sizeofMSRsHeader)
	KVM_SET_MSRS               = iow(0x89, sizeofMSRsHeader)
	KVM_GET_FPU                = ior(0x8c, sizeofFPU)
	KVM_SET_FPU                = iow(0x8d, sizeofFPU)
	KVM_GET_LAPIC              = ior(0x8e, sizeofLAPICState)
	KVM_SET_LAPIC              = iow(0x8f, sizeofLAPICState)
	KVM_SET_CPUID2             = iow(0x90, sizeofCPUID2Header)
)

// Capabilities for KVM_CHECK_EXTENSION.
const (
	KVM_CAP_IRQCHIP               = 0
	KVM_CAP_HLT                   = 1
	KVM_CAP_USER_MEMORY           = 3
	KVM_CAP_SET_TSS_ADDR          = 4
	KVM_CAP_EXT_CPUID             = 7
	KVM_CAP_NR_VCPUS              = 9
	KVM_CAP_NR_MEMSLOTS           = 10
	KVM_CAP_PIT2                  = 33
	KVM_CAP_SET_IDENTITY_MAP_ADDR = 37
	KVM_CAP_MAX_VCPUS             = 66
	KVM_CAP_IMMEDIATE_EXIT        = 136
	KVM_CAP_INTERNAL_ERROR_DATA   = 40
	KVM_CAP_IRQFD                 = 32
	KVM_CAP_IOEVENTFD             = 36
	KVM_CAP_REINJECT_CONTROL      = 24
	KVM_CAP_IRQ_ROUTING           = 25
	KVM_CAP_SIGNAL_MSI            = 77
)

// KVM_API_VERSION is the only stable API version there has ever been.
const KVM_API_VERSION = 12

// Exit reasons (kvm_run.exit_reason).
const (
	KVM_EXIT_UNKNOWN         = 0
	KVM_EXIT_EXCEPTION       = 1
	KVM_EXIT_IO              = 2
	KVM_EXIT_HYPERCALL       = 3
	KVM_EXIT_DEBUG           = 4
	KVM_EXIT_HLT             = 5
	KVM_EXIT_MMIO            = 6
	KVM_EXIT_IRQ_WINDOW_OPEN = 7
	KVM_EXIT_SHUTDOWN        = 8
	KVM_EXIT_FAIL_ENTRY      = 9
	KVM_EXIT_INTR            = 10
	KVM_EXIT_NMI             = 16
	KVM_EXIT_INTERNAL_ERROR  = 17
	KVM_EXIT_SYSTEM_EVENT    = 24
)

const (
	KVM_EXIT_IO_IN  = 0
	KVM_EXIT_IO_OUT = 1

	KVM_INTERNAL_ERROR_EMULATION                        = 1
	KVM_INTERNAL_ERROR_SIMUL_EX                         = 2
	KVM_INTERNAL_ERROR_DELIVERY_EV                      = 3
	KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON           = 4
	KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES = 1

	KVM_SYSTEM_EVENT_SHUTDOWN = 1
	KVM_SYSTEM_EVENT_RESET    = 2
	KVM_SYSTEM_EVENT_CRASH    = 3
)

// KVM_MAX_CPUID_ENTRIES bounds the CPUID table we ask for.
const KVM_MAX_CPUID_ENTRIES = 256
