package virtio

import (
	"errors"
	"fmt"
)

// ErrNeedsReset is what every guest-caused queue error unwraps to: the
// driver broke the split-ring rules, the queue has stopped, and the
// transport should set DEVICE_NEEDS_RESET (§2.1.1) until the driver resets
// the device.
var ErrNeedsReset = errors.New("virtqueue broken by the driver: device needs reset")

// Configuration errors, returned by Queue.Enable. They unwrap to
// ErrBadConfig so a transport can refuse the enable as a whole.
var (
	ErrBadConfig       = errors.New("invalid virtqueue configuration")
	ErrQueueSize       = errors.New("queue size is not a power of two within the device maximum")
	ErrRingAlignment   = errors.New("virtqueue part misaligned")
	ErrRingOutOfMemory = errors.New("virtqueue part not inside guest memory")
)

// Device-side misuse, not the driver's fault.
var (
	ErrNotReady           = errors.New("virtqueue not ready")
	ErrUsedHeadOutOfRange = errors.New("used head index out of range")
	ErrNothingInFlight    = errors.New("more used buffers than chains popped")
)

// ErrAvailIdxJump: avail.idx moved more than Queue Size entries past the
// device's position, which no correct driver can do (it would overwrite
// entries the device has not read). Firecracker calls it InvalidAvailIdx.
var ErrAvailIdxJump = errors.New("available index advanced by more than the queue size")

// Descriptor chain errors (§2.7.5), carried in a *ChainError.
var (
	ErrHeadOutOfRange           = errors.New("chain head index out of range")
	ErrNextOutOfRange           = errors.New("descriptor next index out of range")
	ErrIndirectNextOutOfRange   = errors.New("indirect descriptor next index outside its table")
	ErrChainLoop                = errors.New("descriptor chain longer than its table: it loops")
	ErrReadableAfterWritable    = errors.New("device-readable descriptor after a device-writable one")
	ErrBufferOutOfMemory        = errors.New("descriptor buffer not inside guest memory")
	ErrLengthOverflow           = errors.New("chain's readable or writable bytes exceed 2^32-1")
	ErrIndirectNotNegotiated    = errors.New("indirect descriptor without VIRTIO_F_INDIRECT_DESC")
	ErrIndirectWithNext         = errors.New("descriptor has both INDIRECT and NEXT")
	ErrNestedIndirect           = errors.New("indirect descriptor inside an indirect table")
	ErrIndirectTableLen         = errors.New("indirect table length is zero or not a multiple of 16")
	ErrIndirectTableTooLarge    = errors.New("indirect table has more descriptors than allowed")
	ErrIndirectTableOutOfMemory = errors.New("indirect table not inside guest memory")
)

// ChainError says which descriptor of which chain broke a rule. It unwraps
// to Err (one of the chain sentinels), to ErrNeedsReset, and to Cause when
// there is one (a guestmem error).
type ChainError struct {
	Head     uint16 // the chain's head, from the available ring
	Index    uint16 // the offending descriptor's index in its table
	Indirect bool   // Index is in an indirect table, not the queue's
	Err      error
	Cause    error
}

func (e *ChainError) Error() string {
	where := "descriptor"
	if e.Indirect {
		where = "indirect descriptor"
	}
	s := fmt.Sprintf("chain %d, %s %d: %v", e.Head, where, e.Index, e.Err)
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

func (e *ChainError) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Err, ErrNeedsReset, e.Cause}
	}
	return []error{e.Err, ErrNeedsReset}
}
