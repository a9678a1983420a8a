package blk

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// mincore fills vec with a byte per page of m, bit 0 set where the page is
// in the page cache (mincore(2), which x/sys/unix does not wrap). m starts
// on a page boundary and vec has a byte for each of its pages.
func mincore(m, vec []byte) error {
	if len(m) == 0 {
		return nil
	}
	_, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0])))
	if e != 0 {
		return e
	}
	return nil
}
