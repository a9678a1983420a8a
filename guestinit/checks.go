package guestinit

import (
	"fmt"
	"io"
	"os"

	"github.com/vmm-dev/vmm/guestinit/protocol"
	"golang.org/x/sys/unix"
)

// RunChecks runs the checks cmdline asks for (package protocol lists them)
// in the order cpus, pci, disk, net, and prints one result line each to
// console. A failed check is reported and the next one runs: the host
// reads every line, and the guest still powers off.
func RunChecks(console io.Writer, cmdline string) {
	report := func(r protocol.Result) { fmt.Fprintln(console, r) }
	checks, err := protocol.ParseCmdline(cmdline)
	if err != nil {
		report(protocol.Failed(protocol.ResultConfig, err))
		return
	}
	sys := os.DirFS("/sys")
	if checks.CPUs {
		report(cpusCheck(sys))
	}
	if checks.PCI {
		report(pciCheck(sys))
	}
	if checks.RunConfig {
		report(runConfigCheck(protocol.RunConfigPath))
	}
	if d := checks.Disk; d != nil {
		if err := mountDisk(*d); err != nil {
			report(protocol.Failed(protocol.CheckDisk, err))
		} else {
			report(diskFiles(protocol.MountPoint, *d))
			// The net check may serve a file from the disk: unmount last.
			defer func() { report(unmountDisk()) }()
		}
	}
	if n := checks.Net; n != nil {
		netCheck(report, *n)
	}
}

// mountDisk waits for the disk's device node (devtmpfs creates it once the
// driver has probed the disk) and mounts it at protocol.MountPoint.
func mountDisk(d protocol.DiskCheck) error {
	if err := waitFor(deviceWait, func() error { _, err := os.Stat(d.Device); return err }); err != nil {
		return fmt.Errorf("wait for the disk: %w", err)
	}
	m := Mount{Source: d.Device, Target: protocol.MountPoint, FSType: d.FSType}
	if err := os.MkdirAll(m.Target, 0o755); err != nil {
		return fmt.Errorf("mount %s: %w", m, err)
	}
	if err := unix.Mount(m.Source, m.Target, m.FSType, m.Flags, m.Data); err != nil {
		return fmt.Errorf("mount %s: %w", m, err)
	}
	return nil
}

// unmountDisk unmounts the disk; a clean unmount leaves the filesystem
// consistent on the host side too (e2fsck finds nothing to fix).
func unmountDisk() protocol.Result {
	if err := unix.Unmount(protocol.MountPoint, 0); err != nil {
		return protocol.Failed(protocol.ResultUmount, fmt.Errorf("unmount %s: %w", protocol.MountPoint, err))
	}
	return protocol.Passed(protocol.ResultUmount, "path", protocol.MountPoint)
}

// runConfigCheck reads and decodes the per-run config the host appended to
// the initramfs, reporting what a run would start.
func runConfigCheck(path string) protocol.Result {
	b, err := os.ReadFile(path)
	if err != nil {
		return protocol.Failed(protocol.CheckRunConfig, err)
	}
	cfg, err := protocol.DecodeRunConfig(b)
	if err != nil {
		return protocol.Failed(protocol.CheckRunConfig, err)
	}
	return protocol.Passed(protocol.CheckRunConfig, "hostname", cfg.Hostname, "args", fmt.Sprint(len(cfg.Args)))
}
