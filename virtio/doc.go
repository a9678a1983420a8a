// Package virtio implements the device side of virtio 1.2: the split
// virtqueue (§2.7) and, later, the Device interface and its transports.
//
// A guest controls every byte of a virtqueue, so nothing here trusts it. A
// descriptor chain is read once and validated whole (indices, length limits,
// loops, readable-before-writable order, every buffer inside guest memory,
// indirect tables) before a device sees any of it; the device then reads and
// writes the chain only through a Reader and a Writer that go through the
// bounds-checked guestmem accessors. A guest that breaks the rules gets an
// error that unwraps to ErrNeedsReset, which the transport turns into
// DEVICE_NEEDS_RESET (§2.1.1); it never gets a host panic.
//
// # Memory ordering
//
// The guest's driver runs on other CPUs and shares the rings with the device
// without locks. The spec asks for barriers at a few points (§2.7.13,
// §2.7.14, and the Linux helpers in Appendix virtio_queue.h). Go has no
// standalone fence, and guest memory is reached through plain loads and
// stores, so a Queue issues an atomic read-modify-write on a field of its
// own where a barrier is needed. On amd64 that is a LOCK-prefixed
// instruction, a full hardware barrier, and for the compiler an ordering
// point that plain memory accesses are not moved across. The call sites say
// which barrier the spec asks for there.
package virtio
