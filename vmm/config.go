package vmm

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/vmm-dev/vmm/boot"
	"github.com/vmm-dev/vmm/guestmem"
)

// Config describes a Machine.
type Config struct {
	Kernel  string // path to a bzImage
	Initrd  string // path to an initrd; empty for none
	Cmdline string

	MemoryBytes uint64 // guest RAM
	CPUs        int

	// Console receives the guest's serial output. ConsoleIn, if set, is
	// read for the guest's serial input until it returns an error.
	Console   io.Writer
	ConsoleIn io.Reader

	// Disks are virtio-blk devices, in order: the first is /dev/vda.
	Disks []Disk
	// NICs are virtio-net devices on TAP interfaces or switch sockets, in
	// order (eth0 first).
	NICs []NIC
	// RNG adds a virtio-rng device fed by the host's getrandom.
	RNG bool
	// Ports are named virtio-console ports (one multiport device): the
	// channel `vmm run` carries a workload's stdin, stdout and stderr on,
	// apart from the kernel's serial console.
	Ports []Port

	// Log receives the VMM's own warnings while the guest runs; nil
	// discards them.
	Log io.Writer

	// ExtraPIO adds port-I/O devices (tests, probes) to the machine.
	ExtraPIO []PIODevice

	// Profile adapts the guest to the host (SoftwareKVMProfile for a
	// software-only KVM); the zero Profile changes nothing.
	Profile Profile
	// Vmlinux is used only when the Profile asks for host decompression
	// (Profile.HostDecompress): it returns the kernel at kernelPath
	// decompressed, for boot.Load, and a function that releases it.
	// container.HostVmlinux gets it from vmm-images, which caches it. An
	// error that is boot.ErrUnsupportedCompression or boot.ErrNoPayload
	// (a kernel the host cannot unpack), or ErrHostDecompressUnavailable
	// (with a warning on Log), boots the bzImage as is; any other fails
	// the load. Nil means the guest decompresses itself.
	Vmlinux func(kernelPath string) (*boot.Vmlinux, func(), error)

	// Seccomp confines the whole process to the system calls a running
	// VMM needs (package vmm/seccomp) when Run starts, for good: set it
	// only in a process that is a VMM from then on, as the vmm command
	// is.
	Seccomp bool

	// WhileKVMSetup, if set, runs once on New's goroutine while KVM's
	// half of the set-up (the irqchip and vCPUs) finishes, for start-up
	// work of the caller's that needs no Machine: the vmm command
	// subscribes to its stop signals there, which costs a runtime thread.
	// It runs only if New gets that far.
	WhileKVMSetup func()
}

// Disk is a file-backed virtio-blk disk.
type Disk struct {
	Path     string
	ReadOnly bool
}

// Port is one named virtio-console port. Out receives what the guest
// writes; In, if set, is read to feed the guest.
type Port struct {
	Name string
	In   io.Reader
	Out  io.Writer
}

// MaxPorts bounds the console ports of one machine.
const MaxPorts = 31

// PIODevice places a device on the port-I/O bus.
type PIODevice struct {
	Name string
	Base uint16
	Size uint16
	Dev  Device
}

// Limits the VMM checks up front, before it opens /dev/kvm; docs/security.md
// lists them with the limits checked later in set-up (the kernel command
// line, the initrd, host RAM in cmd/vmm).
const (
	MinMemory = 16 << 20
	MaxMemory = guestmem.MaxSize // address arithmetic stays far from overflow
	// MemoryPage is the granularity of guest RAM: KVM maps memory slots
	// in whole pages and refuses any other size.
	MemoryPage = 4 << 10
	MaxCPUs    = 254 // one xAPIC ID each, 255 is the broadcast ID
	MaxDisks   = 16
)

// ErrHostDecompressUnavailable marks a Config.Vmlinux error that says the
// host cannot decompress any kernel (vmm-images is missing): the guest
// decompresses its own, more slowly.
var ErrHostDecompressUnavailable = errors.New("host-side kernel decompression unavailable")

// ErrConfig marks a Config a person must fix.
var ErrConfig = errors.New("invalid machine configuration")

// validate checks the Config against the limits above. Each error names
// the value, the limit and what to give instead.
func (c *Config) validate() error {
	if c.Kernel == "" {
		return fmt.Errorf("%w: no kernel given", ErrConfig)
	}
	if err := checkMemory(c.MemoryBytes); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if len(c.Disks) > MaxDisks {
		return fmt.Errorf("%w: %d disks; give at most %d", ErrConfig, len(c.Disks), MaxDisks)
	}
	if len(c.NICs) > MaxNICs {
		return fmt.Errorf("%w: %d network devices; give at most %d", ErrConfig, len(c.NICs), MaxNICs)
	}
	for i, n := range c.NICs {
		if err := n.check(); err != nil {
			return fmt.Errorf("%w: network device %d: %w", ErrConfig, i, err)
		}
	}
	if len(c.Ports) > MaxPorts {
		return fmt.Errorf("%w: %d console ports; give at most %d", ErrConfig, len(c.Ports), MaxPorts)
	}
	if c.CPUs < 1 || c.CPUs > MaxCPUs {
		return fmt.Errorf("%w: %d CPUs; give 1 to %d", ErrConfig, c.CPUs, MaxCPUs)
	}
	return nil
}

// checkMemory checks a guest RAM size against MinMemory, MaxMemory and
// MemoryPage.
func checkMemory(b uint64) error {
	switch {
	case b < MinMemory:
		return fmt.Errorf("memory %s is below the %s minimum: give at least %s", FormatSize(b), FormatSize(MinMemory), FormatSize(MinMemory))
	case b > MaxMemory:
		return fmt.Errorf("memory %s is above the %s maximum: give at most %s", FormatSize(b), FormatSize(MaxMemory), FormatSize(MaxMemory))
	case b%MemoryPage != 0:
		// A fractional size such as 1.3G lands here; a whole MiB above
		// it is what the user most likely meant.
		const mib = 1 << 20
		return fmt.Errorf("memory %s is not a whole number of %s pages: give a multiple of %s, such as %s",
			FormatSize(b), FormatSize(MemoryPage), FormatSize(MemoryPage), FormatSize((b+mib-1)/mib*mib))
	}
	return nil
}

// ParseSize parses a memory size: a number of bytes with an optional K, M,
// G or T suffix (powers of 1024; "512M", "1G", "1.5G").
func ParseSize(s string) (uint64, error) {
	t := strings.TrimSpace(strings.ToUpper(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mult := uint64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult != 1 {
			t = t[:n-1]
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || v != v {
		return 0, fmt.Errorf("size %q: want a number with an optional K, M, G or T suffix, such as 512M", s)
	}
	b := v * float64(mult)
	if b >= 1<<63 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return uint64(b), nil
}

// FormatSize writes bytes the way ParseSize reads them, e.g. "512M".
func FormatSize(b uint64) string {
	for _, u := range []struct {
		shift  uint
		suffix string
	}{{40, "T"}, {30, "G"}, {20, "M"}, {10, "K"}} {
		if b >= 1<<u.shift && b%(1<<u.shift) == 0 {
			return strconv.FormatUint(b>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatUint(b, 10)
}
