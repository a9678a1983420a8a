package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/vmm-dev/vmm/boot/vmlinux"
	"github.com/vmm-dev/vmm/images"
	"github.com/vmm-dev/vmm/vmm"
	"github.com/vmm-dev/vmm/vmm/container"
)

// runVmlinux answers `vmlinux KERNEL` with one VmlinuxReply: the kernel
// decompressed into the cache (images.CacheDir()/vmlinux), or why not. As
// with prepare, failures are in the reply and the status only says whether
// there was one.
func runVmlinux(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("vmlinux", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return vmm.StatusUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "vmm-images vmlinux: want one KERNEL, a bzImage")
		return vmm.StatusUsage
	}
	var reply container.VmlinuxReply
	if dir, err := images.CacheDir(); err != nil {
		reply = container.NewVmlinuxReply("", nil, err)
	} else {
		reply = container.NewVmlinuxReply(vmlinux.Cache(fs.Arg(0), dir))
	}
	if err := json.NewEncoder(stdout).Encode(reply); err != nil {
		fmt.Fprintf(stderr, "vmm-images vmlinux: %v\n", err)
		return 1
	}
	if reply.Error != "" {
		return 1
	}
	return 0
}
