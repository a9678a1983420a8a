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

// Sentinels for a bzImage's kernel decompressed on the host (package
// boot/vmlinux makes it, Config.Vmlinux loads it). They live here so the
// VM process can branch on them without linking the decompressors.
var (
	ErrUnsupportedCompression = errors.New("unsupported kernel compression")
	ErrBadPayload             = errors.New("bad compressed kernel payload")
	ErrNotVmlinux             = errors.New("not a loadable x86-64 vmlinux")
	// ErrNoPayload: the header names no compressed kernel (payload_length
	// 0), as in images that carry their code uncompressed.
	ErrNoPayload = errors.New("the bzImage header locates no compressed kernel payload")
)

// UnsupportedCompressionError names the payload's compression format, or its
// first bytes when the magic is not one we know.
type UnsupportedCompressionError struct {
	Format string
}

func (e *UnsupportedCompressionError) Error() string {
	return fmt.Sprintf("kernel payload is %s-compressed, which the host-side decompressor does not handle: "+
		"boot it without host decompression, or use a gzip, lz4 or zstd kernel", e.Format)
}

func (e *UnsupportedCompressionError) Unwrap() error { return ErrUnsupportedCompression }

// PayloadError says why a compressed payload could not be decompressed. Err,
// when set, is the decoder's own error.
type PayloadError struct {
	Format string // "gzip", "lz4", ...; "" before the format is known
	Reason string
	Err    error
}

func (e *PayloadError) Error() string {
	s := "kernel payload"
	if e.Format != "" {
		s += " (" + e.Format + ")"
	}
	s += ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *PayloadError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrBadPayload}
	}
	return []error{ErrBadPayload, e.Err}
}

// VmlinuxError says why a decompressed kernel, or its layout, cannot be
// placed in guest memory.
type VmlinuxError struct {
	Reason string
}

func (e *VmlinuxError) Error() string { return "vmlinux: " + e.Reason }

func (e *VmlinuxError) Unwrap() error { return ErrNotVmlinux }
