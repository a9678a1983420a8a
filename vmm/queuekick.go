package vmm

import (
	"encoding/binary"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// queueKick is the eventfd that KVM signals when the guest notifies one
// virtqueue (an ioeventfd), and that the VMM signals itself for a notify
// that reached the transport through a vCPU exit.
//
// The queue goroutine waits on it through the Go runtime's poller, not in
// a blocking read(2): a goroutine parked there holds no P. A thread
// blocked in read holds its P in a system call, and with the vCPU threads
// holding theirs in KVM_RUN, sysmon finds no idle P, retakes one every
// tick and so never slows down from its 20 µs period; each of its
// wake-ups preempts a vCPU thread, which on a software hypervisor costs
// the guest tens of microseconds. Parked, the goroutine is woken by the
// thread waiting in epoll, and the device's own goroutines it readies (a
// receiver) run on that thread as soon as it waits again.
type queueKick struct {
	fd int      // for KVM_IOEVENTFD and signal
	f  *os.File // owns fd; reads go through the poller
}

func newQueueKick() (*queueKick, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	// A non-blocking descriptor goes into the poller (os.NewFile).
	return &queueKick{fd: fd, f: os.NewFile(uintptr(fd), "queue kick")}, nil
}

// signal adds one to the counter, as KVM does for a guest notify. It never
// blocks: a counter that is already set stays set.
func (k *queueKick) signal() {
	var one [8]byte
	binary.LittleEndian.PutUint64(one[:], 1)
	unix.Write(k.fd, one[:])
}

// wait parks until the counter is set, then clears it: the notifications
// since the last wait count as one. It fails only once the kick is closed.
func (k *queueKick) wait() error {
	var buf [8]byte
	_, err := k.f.Read(buf[:])
	return err
}

// close releases the eventfd; a goroutine in wait returns an error.
func (k *queueKick) close() error { return k.f.Close() }
