package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/vmm-dev/vmm/vmm"
	"github.com/vmm-dev/vmm/vmm/lab"
	"github.com/vmm-dev/vmm/vmm/netswitch"
)

const labHelpTail = `FILE is a TOML lab file:

  [[network]]
  name = "lan"                    # subnet = "10.89.0.0/24" by default

  [[vm]]
  name = "server"
  image = "oci-layout:out/busybox:latest"
  command = ["httpd", "-f", "-p", "80"]
  networks = ["lan"]              # image VMs get an address and /etc/hosts names

  [[vm]]
  name = "probe"
  kernel = "probe.bzImage"        # initrd, cmdline; memory, cpus, disks for any VM
  networks = ["lan"]

Every VM is its own vmm process (vmm boot for a kernel, vmm run for an
image); the VMs on a network share an L2 segment through a switch this
process hosts, so no root and no host interface is involved. Their output
is shown line by line, prefixed with the VM's name. Ctrl-C stops them all
(SIGTERM, then SIGKILL after 10 s).

Exit status: 0 when every VM ended with status 0, 1 otherwise (each VM's
status is printed at the end), 2 for a bad command line or lab file.
`

func labFlags(stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet("lab", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func runLab(args []string, stdout, stderr io.Writer) int {
	fs := labFlags(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "vmm lab: %v; run `vmm help lab`\n", err)
		return vmm.StatusUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "vmm lab: want one lab FILE; run `vmm help lab` for its format\n")
		return vmm.StatusUsage
	}
	path := fs.Arg(0)
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(stderr, "vmm lab: %v\n", err)
		return vmm.StatusUsage
	}
	file, err := lab.Parse(f, filepath.Dir(path))
	f.Close()
	if err != nil {
		fmt.Fprintf(stderr, "vmm lab: %s: %v\n", path, err)
		return vmm.StatusUsage
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "vmm lab: find the vmm binary: %v\n", err)
		return vmm.StatusSetupError
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	results, err := lab.Run(ctx, file, lab.Options{
		Exe: exe, Out: stdout,
		StartSwitch: func(p string) (io.Closer, error) { return netswitch.New(p) },
	})
	if err != nil {
		fmt.Fprintf(stderr, "vmm lab: %v\n", err)
		if errors.Is(err, lab.ErrBadFile) {
			return vmm.StatusUsage
		}
		return vmm.StatusSetupError
	}
	parts := make([]string, len(results))
	for i, r := range results {
		parts[i] = fmt.Sprintf("%s %d", r.Name, r.Status)
	}
	fmt.Fprintf(stderr, "vmm lab: exit statuses: %s\n", strings.Join(parts, ", "))
	if !lab.OK(results) {
		return 1
	}
	return 0
}
