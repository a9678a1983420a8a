package net

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// tunPath is the clone device every TUN/TAP interface is opened through.
const tunPath = "/dev/net/tun"

// TUNSETOFFLOAD flags (linux/if_tun.h), missing from x/sys/unix.
const (
	tunFCsum   = 0x01 // TUN_F_CSUM: the reader takes partial checksums
	tunFTSO4   = 0x02 // TUN_F_TSO4: ... TCP/IPv4 segmentation offload
	tunFTSO6   = 0x04 // TUN_F_TSO6: ... TCP/IPv6 segmentation offload
	tunFTSOECN = 0x08 // TUN_F_TSO_ECN: ... TSO with ECN
)

// tapFlags open a TAP (Ethernet frames) with no packet-information prefix
// and with the virtio-net header in front of each frame.
const tapFlags = unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR

// TAP is a Backend over a Linux TAP interface. Its descriptor is
// non-blocking and in the Go runtime's poller, so a waiting read parks a
// goroutine rather than a thread and a read deadline interrupts it.
type TAP struct {
	name string
	f    *os.File
	rc   syscall.RawConn
	try  tapTry // TryReadPacket's one read, made without allocating
}

// tapTry is TryReadPacket's read: its function is made once, so handing
// it to RawConn.Read allocates nothing per packet. Only the receive
// goroutine reads (see Backend).
type tapTry struct {
	read func(fd uintptr) bool
	p    []byte
	n    int
	err  error
}

var _ Backend = (*TAP)(nil)

// OpenTAP attaches to the TAP interface called name, creating it if it
// does not exist (which takes CAP_NET_ADMIN), in the calling thread's
// network namespace. Errors are *TAPError.
func OpenTAP(name string) (*TAP, error) {
	if !ValidIfName(name) {
		return nil, &TAPError{Name: name, Op: "check name", Err: ErrTAPName}
	}
	fd, err := unix.Open(tunPath, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, tapError(name, "open "+tunPath, err)
	}
	t, err := setupTAP(fd, name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return t, nil
}

// setupTAP attaches fd to the interface and sets the header size, then
// hands fd to the runtime's poller.
func setupTAP(fd int, name string) (*TAP, error) {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return nil, &TAPError{Name: name, Op: "check name", Err: ErrTAPName, Cause: err}
	}
	ifr.SetUint16(tapFlags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return nil, tapError(name, "TUNSETIFF", err)
	}
	name = ifr.Name() // a pattern such as tap%d becomes the name given
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, HeaderSize); err != nil {
		return nil, tapError(name, "TUNSETVNETHDRSZ", err)
	}
	// VIRTIO_F_VERSION_1 headers are little-endian whatever the host.
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETLE, 1); err != nil {
		return nil, tapError(name, "TUNSETVNETLE", err)
	}
	f := os.NewFile(uintptr(fd), "tap "+name)
	rc, err := f.SyscallConn()
	if err == nil {
		// Proves the descriptor is in the poller: ErrNoDeadline if not.
		err = f.SetReadDeadline(time.Time{})
	}
	if err != nil {
		f.Close()
		return nil, tapError(name, "poll", err)
	}
	t := &TAP{name: name, f: f, rc: rc}
	t.try.read = func(fd uintptr) bool {
		t.try.n, t.try.err = unix.Read(int(fd), t.try.p)
		return true // one attempt: never wait
	}
	return t, nil
}

// ValidIfName reports whether name can name a network interface: the
// kernel's dev_valid_name: 1 to IFNAMSIZ-1 bytes, not
// "." or "..", and no '/', ':' or white space. NUL cannot reach the
// kernel.
func ValidIfName(name string) bool {
	if name == "" || len(name) >= unix.IFNAMSIZ || name == "." || name == ".." {
		return false
	}
	for _, c := range []byte(name) {
		switch c {
		case '/', ':', ' ', '\t', '\n', '\v', '\f', '\r', 0:
			return false
		}
	}
	return true
}

// tapError classifies a failed step of OpenTAP.
func tapError(name, op string, err error) error {
	e := &TAPError{Name: name, Op: op, Cause: err}
	switch {
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
		if op == "open "+tunPath {
			e.Err = ErrTUNMissing
		}
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		e.Err = ErrTAPPermission
	case errors.Is(err, unix.EBUSY):
		e.Err = ErrTAPBusy
	case errors.Is(err, unix.EINVAL):
		if op == "TUNSETIFF" {
			// The name passed dev_valid_name, so the interface exists
			// with another type or flags (a TUN, multi-queue).
			e.Err = ErrNotTAP
		}
	}
	return e
}

// Name is the interface's name.
func (t *TAP) Name() string { return t.name }

// ReadPacket reads one packet, waiting in the poller for one.
func (t *TAP) ReadPacket(p []byte) (int, error) { return t.f.Read(p) }

// TryReadPacket reads one packet if the TAP has one queued.
func (t *TAP) TryReadPacket(p []byte) (int, error) {
	t.try.p = p
	err := t.rc.Read(t.try.read)
	n, rerr := t.try.n, t.try.err
	t.try.p, t.try.err = nil, nil
	switch {
	case err != nil: // closed, or the deadline passed
		return 0, err
	case rerr == unix.EAGAIN || rerr == unix.EINTR:
		return 0, ErrNoPacket
	case rerr != nil:
		return 0, &os.PathError{Op: "read", Path: t.f.Name(), Err: rerr}
	}
	return n, nil
}

// WritePacket sends one packet. The TAP takes it whole or not at all: it
// refuses a header it cannot honour (EINVAL) and, while the interface is
// down, everything (EIO).
func (t *TAP) WritePacket(p []byte) error {
	_, err := t.f.Write(p)
	return err
}

// SetReadDeadline sets the deadline for ReadPacket and TryReadPacket.
func (t *TAP) SetReadDeadline(d time.Time) error { return t.f.SetReadDeadline(d) }

// SetOffloads lets the kernel hand over the partial checksums and TSO
// packets the driver accepted (TUNSETOFFLOAD); otherwise it checksums and
// segments them first.
func (t *TAP) SetOffloads(features uint64) error {
	var err error
	cerr := t.rc.Control(func(fd uintptr) {
		err = unix.IoctlSetInt(int(fd), unix.TUNSETOFFLOAD, tunOffloads(features))
	})
	if cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("TAP %s: TUNSETOFFLOAD: %w", t.name, err)
	}
	return nil
}

// tunOffloads maps the negotiated VIRTIO_NET_F_GUEST_* bits to TUN_F_*
// flags. The kernel takes TSO only with CSUM and ECN only with TSO, and
// refuses the ioctl otherwise.
func tunOffloads(features uint64) int {
	if features&FeatureGuestCsum == 0 {
		return 0
	}
	flags := tunFCsum
	if features&FeatureGuestTSO4 != 0 {
		flags |= tunFTSO4
	}
	if features&FeatureGuestTSO6 != 0 {
		flags |= tunFTSO6
	}
	if features&FeatureGuestECN != 0 && flags&(tunFTSO4|tunFTSO6) != 0 {
		flags |= tunFTSOECN
	}
	return flags
}

// Close closes the descriptor; a non-persistent TAP disappears with it.
func (t *TAP) Close() error { return t.f.Close() }
