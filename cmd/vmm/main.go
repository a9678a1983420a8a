// Command vmm runs Linux kernels and micro-guests in KVM virtual machines.
//
//	vmm boot --kernel K [--initrd I] [--cmdline S] [--memory 512M] [--cpus 1]
//	vmm run [FLAGS] IMAGE [CMD...]
//	vmm lab FILE
//	vmm pull IMAGE | vmm images | vmm rmi IMAGE
//	vmm doctor [--json]
//	vmm version
//	vmm help [COMMAND]
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/vmm-dev/vmm/internal/startuptrace"
	"github.com/vmm-dev/vmm/vmm"
	"github.com/vmm-dev/vmm/vmm/container"
	"github.com/vmm-dev/vmm/vmm/lab/labhelp"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type command struct {
	name, summary string
	run           func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"boot", "boot a kernel (bzImage) in a new VM, with the serial console on this terminal", runBoot},
		{"run", "run a container image's workload in its own micro-VM, like docker run", runRun},
		{"lab", "bring up the VMs and networks a lab file describes, output prefixed by VM name", runLab},
		{"pull", "fetch a container image into the local store (registry, oci-layout:DIR[:TAG], docker-archive:FILE)", imageCommand("pull")},
		{"images", "list the images in the local store", imageCommand("images")},
		{"rmi", "remove an image from the local store", imageCommand("rmi")},
		{"doctor", "check this host: KVM access, capabilities, hardware or software virtualization, TAP", runDoctor},
		{"version", "print vmm's version", runVersion},
		{"help", "show help for vmm or one of its commands", runHelp},
	}
}

func main() {
	startuptrace.Mark("main")
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

// cpuProfileEnv names a file to write a CPU profile of the whole command
// to, in pprof's format: where vmm's own time goes (go tool pprof). Only a
// vmm built with -tags vmm_pprof (make build-pprof) can: see cpuprofile.go.
const cpuProfileEnv = "VMM_CPUPROFILE"

func dispatch(args []string, stdout, stderr io.Writer) int {
	if path := os.Getenv(cpuProfileEnv); path != "" {
		stop, err := startCPUProfile(path)
		if err != nil {
			fmt.Fprintf(stderr, "vmm: %s: %v; running without a profile\n", cpuProfileEnv, err)
		} else {
			defer stop()
		}
	}
	if len(args) == 0 {
		usage(stderr)
		return vmm.StatusUsage
	}
	name := args[0]
	switch name {
	case "-h", "--help":
		usage(stdout)
		return 0
	case "--version":
		name = "version"
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "vmm: unknown command %q; run `vmm help` for the list\n", name)
	return vmm.StatusUsage
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "vmm: a virtual machine monitor for Linux KVM\n\nUsage: vmm COMMAND [FLAGS]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun `vmm help COMMAND` for a command's flags.\n")
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintf(stdout, "vmm %s\n", version)
	return 0
}

func runHelp(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stdout)
		return 0
	}
	switch args[0] {
	case "boot":
		fs, _ := bootFlags(stderr)
		fmt.Fprintf(stdout, "Usage: vmm boot --kernel K [--initrd I] [--cmdline S] [--memory 512M] [--cpus 1] [--disk PATH[,ro]]... [--net tap=NAME|socket=PATH[,mac=MAC]]...\n\n%s\n%s", fs.FlagUsages(), bootHelpTail)
	case "run":
		fs, _ := runFlags(stderr)
		fmt.Fprintf(stdout, "Usage: vmm run [FLAGS] IMAGE [COMMAND [ARG...]]\n\n%s\n%s", fs.FlagUsages(), runHelpTail)
	case "lab":
		fmt.Fprint(stdout, labhelp.Text)
	case "doctor":
		fs, _ := doctorFlags(stderr)
		fmt.Fprintf(stdout, "Usage: vmm doctor [--json]\n\n%s", fs.FlagUsages())
	case "pull", "rmi":
		fmt.Fprintf(stdout, "Usage: vmm %s IMAGE\n\nIMAGE is a registry reference (alpine:3.20, ghcr.io/org/app@sha256:...),\noci-layout:DIR[:TAG] or docker-archive:FILE.tar.\n", args[0])
	case "images":
		fmt.Fprintf(stdout, "Usage: vmm images\n")
	case "version", "help":
		fmt.Fprintf(stdout, "Usage: vmm %s\n", args[0])
	default:
		fmt.Fprintf(stderr, "vmm: unknown command %q; run `vmm help` for the list\n", args[0])
		return vmm.StatusUsage
	}
	return 0
}

// imageCommand runs one of the image store's commands in vmm-images (the
// image side lives there, so this binary stays lean), with this process's
// stdio, and returns its status.
func imageCommand(name string) func(args []string, stdout, stderr io.Writer) int {
	return func(args []string, stdout, stderr io.Writer) int {
		tool, err := container.FindTool()
		if err != nil {
			fmt.Fprintf(stderr, "vmm %s: %v\n", name, err)
			return vmm.StatusSetupError
		}
		cmd := exec.Command(tool, append([]string{name}, args...)...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
		err = cmd.Run()
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee) && ee.Exited():
			return ee.ExitCode()
		case err != nil:
			fmt.Fprintf(stderr, "vmm %s: %s: %v\n", name, tool, err)
			return vmm.StatusSetupError
		}
		return 0
	}
}
