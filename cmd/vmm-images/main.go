// Command vmm-images is the image side of vmm, installed beside it: the
// registries, layer flattening and ext4 building that `vmm pull`,
// `vmm images`, `vmm rmi` and `vmm run` need. vmm runs it, so the VM
// process itself links none of that and starts lean.
//
//	vmm-images pull IMAGE | images | rmi IMAGE
//	vmm-images prepare    (a container.PrepareRequest as JSON on stdin;
//	                       a container.PrepareReply as JSON on stdout)
//	vmm-images vmlinux KERNEL
//	                      (a container.VmlinuxReply as JSON on stdout: the
//	                       bzImage's kernel, decompressed and cached)
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/vmm-dev/vmm/vmm"
	"github.com/vmm-dev/vmm/vmm/container"
	"github.com/vmm-dev/vmm/vmm/container/imageprep"
)

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func dispatch(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: vmm-images pull IMAGE | images | rmi IMAGE | prepare | vmlinux KERNEL; vmm runs it for `vmm pull`, `vmm images`, `vmm rmi`, `vmm run` and the software-KVM profile's kernel decompression")
		return vmm.StatusUsage
	}
	switch args[0] {
	case "pull":
		return runPull(args[1:], stdout, stderr)
	case "images":
		return runImages(args[1:], stdout, stderr)
	case "rmi":
		return runRmi(args[1:], stdout, stderr)
	case "prepare":
		return runPrepare(stdin, stdout, stderr)
	case "vmlinux":
		return runVmlinux(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "vmm-images: unknown command %q\n", args[0])
	return vmm.StatusUsage
}

// runPrepare answers one PrepareRequest. Failures are in the reply, so
// vmm reports them as its own; the status only says whether there was one.
func runPrepare(stdin io.Reader, stdout, stderr io.Writer) int {
	var req container.PrepareRequest
	var reply container.PrepareReply
	dec := json.NewDecoder(io.LimitReader(stdin, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		reply.Error = fmt.Sprintf("vmm-images prepare: read the request: %v", err)
	} else {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		reply.Prepared, err = imageprep.Prepare(ctx, req, stderr)
		stop()
		if err != nil {
			reply.Error = err.Error()
		}
	}
	return writeReply(stdout, stderr, "prepare", reply, reply.Error)
}

// writeReply writes a command's one JSON reply and returns its status:
// 1 when the reply carries an error (errText) or could not be written.
func writeReply(stdout, stderr io.Writer, command string, reply any, errText string) int {
	if err := json.NewEncoder(stdout).Encode(reply); err != nil {
		fmt.Fprintf(stderr, "vmm-images %s: %v\n", command, err)
		return 1
	}
	if errText != "" {
		return 1
	}
	return 0
}
