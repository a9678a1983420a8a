package boot

import (
	"errors"
	"fmt"
)

// Sentinels for the conditions callers branch on. The typed errors below
// carry the numbers and unwrap to these, so errors.Is works on either.
var (
	ErrNotBzImage      = errors.New("not a bzImage")
	ErrProtocolTooOld  = errors.New("boot protocol too old")
	ErrNot64Bit        = errors.New("kernel has no 64-bit entry point (XLF_KERNEL_64 not set in xloadflags): use an x86_64 kernel")
	ErrCmdlineTooLong  = errors.New("kernel command line too long")
	ErrInitrdTooLarge  = errors.New("initrd does not fit in guest memory")
	ErrKernelTooLarge  = errors.New("kernel does not fit in guest memory")
	ErrMemoryTooSmall  = errors.New("guest memory too small for the boot layout")
	errNegativeSize    = errors.New("negative size")
	errCmdlineHasNUL   = errors.New("kernel command line contains a NUL byte, which would end it early")
	errInitrdNoReader  = errors.New("initrd size given but no initrd reader")
	errTooManyE820     = errors.New("too many e820 entries for boot_params")
	errLayoutNotAtZero = errors.New("first guest memory region does not start at address 0")
)

// FormatError says why a file is not a usable bzImage.
type FormatError struct {
	Reason string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("not a bzImage (%s): pass a Linux bzImage such as /boot/vmlinuz-*", e.Reason)
}

func (e *FormatError) Unwrap() error { return ErrNotBzImage }

// ProtocolError reports a kernel whose boot protocol version (boot.rst
// "version", major<<8|minor) is below MinProtocolVersion.
type ProtocolError struct {
	Version uint16
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("kernel speaks boot protocol %d.%02d, older than the %d.%02d needed for the 64-bit entry: use Linux 3.8 or newer",
		e.Version>>8, e.Version&0xff, MinProtocolVersion>>8, MinProtocolVersion&0xff)
}

func (e *ProtocolError) Unwrap() error { return ErrProtocolTooOld }

// CmdlineTooLongError names the command line's length and the limit: the
// smaller of the kernel's cmdline_size and the space reserved for it.
type CmdlineTooLongError struct {
	Len, Limit int
}

func (e *CmdlineTooLongError) Error() string {
	return fmt.Sprintf("kernel command line is %d bytes, the limit is %d: shorten it", e.Len, e.Limit)
}

func (e *CmdlineTooLongError) Unwrap() error { return ErrCmdlineTooLong }

// InitrdTooLargeError names the initrd's size and the window it had to fit:
// above the kernel's working area and below the initrd ceiling.
type InitrdTooLargeError struct {
	Size    uint64
	Low     uint64 // first free byte above the kernel
	Ceiling uint64 // min(initrd_addr_max+1, end of low RAM)
}

func (e *InitrdTooLargeError) Error() string {
	var free uint64
	if e.Ceiling > e.Low {
		free = e.Ceiling - e.Low
	}
	return fmt.Sprintf("initrd is %d bytes but only %d bytes are free in [%#x, %#x): give the VM more memory or use a smaller initrd",
		e.Size, free, e.Low, e.Ceiling)
}

func (e *InitrdTooLargeError) Unwrap() error { return ErrInitrdTooLarge }

// KernelTooLargeError names where the kernel's working area would end and
// where low RAM ends.
type KernelTooLargeError struct {
	End    uint64 // first byte past the kernel's working area
	RAMEnd uint64 // end of the first RAM region
}

func (e *KernelTooLargeError) Error() string {
	return fmt.Sprintf("kernel's working area (payload and init_size) ends at %#x but low RAM ends at %#x: give the VM at least %d MiB",
		e.End, e.RAMEnd, (e.End+(1<<20)-1)>>20)
}

func (e *KernelTooLargeError) Unwrap() error { return ErrKernelTooLarge }
