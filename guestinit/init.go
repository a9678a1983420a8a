// Package guestinit is PID 1 inside a vmm guest. It mounts the kernel
// filesystems, loads the kernel modules the host put in the initramfs and
// prints a marker line the host looks for. Then, when the host put a run
// config in the initramfs, it runs the container workload the config
// describes (run mode, Runner) and reports its exit status, serving the
// guest agent alongside when the host added its port; when the command
// line has agent.KernelFlag, it serves the agent until the host asks for
// power-off (agent mode, AgentMode); otherwise it runs the device checks
// the kernel command line asks for. Every way it powers the machine off at
// the end.
//
// What the host and guestinit agree on (the module list, the vmm.check
// command-line options and the result lines, the run config, the ports
// and the control messages) is documented and defined in package
// protocol.
package guestinit

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/vmm-dev/vmm/guestinit/protocol"
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
	PID   func() int
	Mount func(Mount) error
	// LoadModules loads the modules the host listed in the initramfs.
	LoadModules func() error
	Release     func() (string, error)
	// Check runs the checks the kernel command line asks for and prints
	// their results to console.
	Check    func(console io.Writer)
	PowerOff func() error
	// RunMode reports whether the host asked for a workload (wantRunMode).
	RunMode func() bool
	// RunWorkload runs it and powers off; it returns only when that
	// fails.
	RunWorkload func(console io.Writer) error
	// AgentMode reports whether the command line asks for agent mode
	// (agent.KernelFlag); ServeAgent serves the agent until the host asks
	// for power-off, and powers off. Nil AgentMode means no.
	AgentMode  func() bool
	ServeAgent func(console io.Writer) error
}

// LinuxOps returns the real Ops.
func LinuxOps() Ops {
	return Ops{
		PID:         unix.Getpid,
		Mount:       mount,
		LoadModules: func() error { return LoadModules(protocol.ModuleList) },
		Release:     kernelRelease,
		Check:       func(console io.Writer) { RunChecks(console, procCmdline()) },
		PowerOff:    powerOff,
		RunMode:     func() bool { return wantRunMode(procCmdline(), runConfigPresent()) },
		RunWorkload: func(console io.Writer) error { return NewRunner(console).Run() },
		AgentMode:   func() bool { return wantAgentMode(procCmdline()) },
		ServeAgent:  func(console io.Writer) error { return NewAgentMode(console).Run() },
	}
}

// wantRunMode tells whether guestinit runs a workload: when the host put
// a run config in the initramfs, unless the command line asks for checks
// (vmm.check), which prove the devices and read the config without
// running it. `vmm run` never asks for checks.
func wantRunMode(cmdline string, haveConfig bool) bool {
	checks, err := protocol.ParseCmdline(cmdline)
	return haveConfig && err == nil && !checks.Any()
}

// runConfigPresent reports whether the host put a run config in the
// initramfs. A config that is there but cannot be read still means run
// mode, which reports the error to the host.
func runConfigPresent() bool {
	_, err := os.Stat(protocol.RunConfigPath)
	return !errors.Is(err, fs.ErrNotExist)
}

// Run mounts mounts in order, loads modules, prints the marker line to
// console, then runs the workload in run mode, serves the agent in agent
// mode or runs the checks otherwise, and powers off. On success PowerOff does not return. A module that fails to load is reported on the console but does
// not stop the boot: the device it drives is then missing, which a check
// or the workload reports more usefully than a kernel panic would.
func Run(console io.Writer, ops Ops, mounts []Mount) error {
	if pid := ops.PID(); pid != 1 {
		return fmt.Errorf("pid %d: %w", pid, ErrNotPID1)
	}
	for _, m := range mounts {
		if err := ops.Mount(m); err != nil {
			return fmt.Errorf("mount %s: %w", m, err)
		}
	}
	if err := ops.LoadModules(); err != nil {
		fmt.Fprintf(console, "guestinit: %v\n", err)
	}
	release, err := ops.Release()
	if err != nil {
		return fmt.Errorf("read kernel release: %w", err)
	}
	if _, err := fmt.Fprintf(console, "%s %s\n", Marker, release); err != nil {
		return fmt.Errorf("write to console: %w", err)
	}
	if ops.RunMode() {
		return ops.RunWorkload(console)
	}
	if ops.AgentMode != nil && ops.AgentMode() {
		return ops.ServeAgent(console)
	}
	ops.Check(console)
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
	return unix.Reboot(EndCommand(procCmdline()))
}

// procCmdline returns the kernel command line; empty if /proc is missing.
func procCmdline() string {
	b, _ := os.ReadFile("/proc/cmdline")
	return string(b)
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
