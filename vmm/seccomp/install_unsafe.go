package seccomp

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// loadFilter installs prog on every thread of the process:
// seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &fprog).
func loadFilter(prog []unix.SockFilter) error {
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	switch {
	case errno != 0:
		return errno
	case r != 0:
		// With TSYNC, a positive result is a thread that could not be
		// synchronised (it has a filter of its own that conflicts).
		return fmt.Errorf("thread %d could not take the filter", r)
	}
	return nil
}
