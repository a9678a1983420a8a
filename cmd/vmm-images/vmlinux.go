package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"github.com/vmm-dev/vmm/boot"
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
	reply := unpack(fs.Arg(0), stderr)
	return writeReply(stdout, stderr, "vmlinux", reply, reply.Error)
}

// unpack decompresses kernel through the cache or, when the cache cannot
// be used (no HOME, a read-only or full disk), into a temporary file the
// VM process removes once it has it open, with a warning: a boot without
// a cache is slower only on the next boot.
func unpack(kernel string, stderr io.Writer) container.VmlinuxReply {
	var image string
	var layout *boot.Vmlinux
	dir, err := images.CacheDir()
	if err == nil {
		image, layout, err = vmlinux.Cache(kernel, dir)
		var ce *vmlinux.CacheError
		if !errors.As(err, &ce) {
			return container.NewVmlinuxReply(image, layout, err)
		}
		warnNoCache(stderr, err)
		image, layout, err = ce.Temporary(os.TempDir()) // what Cache decompressed
	} else {
		warnNoCache(stderr, err)
		image, layout, err = vmlinux.Temporary(kernel, os.TempDir())
	}
	reply := container.NewVmlinuxReply(image, layout, err)
	reply.Temporary = err == nil
	return reply
}

func warnNoCache(stderr io.Writer, err error) {
	fmt.Fprintf(stderr, "vmm-images vmlinux: warning: %v; unpacking the kernel without the cache\n", err)
}
