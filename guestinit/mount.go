package guestinit

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Mount is one filesystem guestinit mounts, described as data so the table
// can be read and tested apart from the syscalls (as u-root's libinit does).
type Mount struct {
	Source string
	Target string
	FSType string
	Flags  uintptr
	Data   string
}

func (m Mount) String() string {
	return fmt.Sprintf("%s on %s type %s", m.Source, m.Target, m.FSType)
}

// Mounts returns the filesystems every guest needs, in mount order.
func Mounts() []Mount {
	const hardened = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	return []Mount{
		{Source: "proc", Target: "/proc", FSType: "proc", Flags: hardened},
		{Source: "sysfs", Target: "/sys", FSType: "sysfs", Flags: hardened},
		// Only nosuid, as systemd mounts it: nodev would defeat its purpose.
		{Source: "devtmpfs", Target: "/dev", FSType: "devtmpfs", Flags: unix.MS_NOSUID, Data: "mode=0755"},
	}
}

// mount creates m's mount point and mounts it. A filesystem that is already
// mounted there (EBUSY) counts as done, so a kernel that mounts devtmpfs by
// itself does not stop the boot.
func mount(m Mount) error {
	if err := os.MkdirAll(m.Target, 0o755); err != nil {
		return fmt.Errorf("create mount point: %w", err)
	}
	err := unix.Mount(m.Source, m.Target, m.FSType, m.Flags, m.Data)
	if errors.Is(err, unix.EBUSY) {
		return nil
	}
	return err
}
