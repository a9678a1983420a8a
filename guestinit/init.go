// Package guestinit is PID 1 inside a vmm guest. This first version mounts
// the kernel filesystems, prints a marker line the host looks for, and
// powers the machine off.
package guestinit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Marker starts the line guestinit prints once the guest is up; the kernel
// release follows it. Hosts and tests look for it on the console.
const Marker = "VMM-GUESTINIT-OK"

// ErrNotPID1 is returned when guestinit runs as an ordinary process: it
// then refuses to mount anything or power the machine off.
var ErrNotPID1 = errors.New("not running as PID 1: guestinit is a guest's init and only mounts and powers off there")

// Ops are the actions init takes on the machine. Tests replace them.
type Ops struct {
	PID      func() int
	Mount    func(Mount) error
	Release  func() (string, error)
	PowerOff func() error
}

// LinuxOps returns the real Ops.
func LinuxOps() Ops {
	return Ops{PID: unix.Getpid, Mount: mount, Release: kernelRelease, PowerOff: powerOff}
}

// Run mounts mounts in order, prints the marker line to console and powers
// off. On success PowerOff does not return.
func Run(console io.Writer, ops Ops, mounts []Mount) error {
	if pid := ops.PID(); pid != 1 {
		return fmt.Errorf("pid %d: %w", pid, ErrNotPID1)
	}
	for _, m := range mounts {
		if err := ops.Mount(m); err != nil {
			return fmt.Errorf("mount %s: %w", m, err)
		}
	}
	release, err := ops.Release()
	if err != nil {
		return fmt.Errorf("read kernel release: %w", err)
	}
	if _, err := fmt.Fprintf(console, "%s %s\n", Marker, release); err != nil {
		return fmt.Errorf("write to console: %w", err)
	}
	if err := ops.PowerOff(); err != nil {
		return fmt.Errorf("power off: %w", err)
	}
	return nil
}

func kernelRelease() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", err
	}
	return unix.ByteSliceToString(u.Release[:]), nil
}

// powerOff flushes filesystems first: reboot(2) does not.
func powerOff() error {
	unix.Sync()
	cmdline, _ := os.ReadFile("/proc/cmdline")
	return unix.Reboot(EndCommand(string(cmdline)))
}

// EndParam on the kernel command line says how guestinit ends the machine:
// "poweroff" (the default) or "reboot". A machine without ACPI power-off
// (a VMM without ACPI tables) halts forever on power-off, but ends on a
// reboot, which Linux performs through the i8042 reset line.
const EndParam = "guestinit.end"

// EndCommand is the reboot(2) command for a kernel command line.
func EndCommand(cmdline string) int {
	for _, f := range strings.Fields(cmdline) {
		if f == EndParam+"=reboot" {
			return unix.LINUX_REBOOT_CMD_RESTART
		}
	}
	return unix.LINUX_REBOOT_CMD_POWER_OFF
}
