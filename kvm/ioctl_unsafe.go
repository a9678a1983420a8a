package kvm

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctl issues a request whose argument is an integer (or nothing).
func ioctl(fd int, req, arg uintptr) (uintptr, error) {
	for {
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, arg)
		if errno == unix.EINTR && req != KVM_RUN {
			continue // KVM_RUN's EINTR is an exit the caller must see
		}
		if errno != 0 {
			return r, errno
		}
		return r, nil
	}
}

// ioctlPtr issues a request whose argument points at a Go value, a
// fixed-layout ABI struct from abi.go. The pointer conversion sits in the
// Syscall expression itself so the value stays alive and in place.
func ioctlPtr[T any](fd int, req uintptr, v *T) error {
	for {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(unsafe.Pointer(v)))
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return errno
		}
		return nil
	}
}

// ioctlPtrResult is ioctlPtr for requests whose result value matters.
func ioctlPtrResult[T any](fd int, req uintptr, v *T) (uintptr, error) {
	for {
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(unsafe.Pointer(v)))
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return r, errno
		}
		return r, nil
	}
}

// ioctlBuf issues a request whose argument is a variable-length C struct
// (kvm_cpuid2, kvm_msrs) laid out in buf, and returns the ioctl's result.
func ioctlBuf(fd int, req uintptr, buf []byte) (uintptr, error) {
	for {
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(unsafe.Pointer(&buf[0])))
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return r, errno
		}
		return r, nil
	}
}

// setImmediateExit stores kvm_run.immediate_exit. The byte is read by the
// kernel on the next KVM_RUN, so a plain store is enough; atomicity with the
// running vCPU comes from the signal that follows it.
func setImmediateExit(run []byte, v bool) {
	p := (*uint8)(unsafe.Pointer(&run[runImmediateExit]))
	if v {
		*p = 1
	} else {
		*p = 0
	}
}

// encodeStruct/decodeStruct copy ABI structs to and from byte buffers for
// the variable-length ioctls.
func encodeStruct(buf []byte, v any) {
	if _, err := binary.Encode(buf, binary.LittleEndian, v); err != nil {
		panic(err) // sizes are fixed by abi.go; a failure is a programming error
	}
}

func decodeStruct(buf []byte, v any) {
	if _, err := binary.Decode(buf, binary.LittleEndian, v); err != nil {
		panic(err)
	}
}
