// Command vmm-lab brings up the VMs and networks a lab file describes, as
// `vmm lab FILE` does: vmm runs it with its own stdio, so the VM process
// links neither the lab nor its TOML parser. It is installed beside vmm
// (make build), and each of the lab's VMs is a vmm process: the vmm named
// by $VMM_EXE (vmm sets it to itself when it runs vmm-lab), else the vmm
// beside vmm-lab.
//
//	vmm-lab FILE
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

	"github.com/vmm-dev/vmm/internal/companion"
	"github.com/vmm-dev/vmm/vmm"
	"github.com/vmm-dev/vmm/vmm/lab"
	"github.com/vmm-dev/vmm/vmm/netswitch"
)

func main() {
	os.Exit(runLab(os.Args[1:], os.Stdout, os.Stderr))
}

func labFlags(stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet("lab", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// runLab is `vmm lab`: its messages say "vmm lab", the command people type.
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
	exe, err := companion.Find(companion.VMM, companion.VMMEnv)
	if err != nil {
		fmt.Fprintf(stderr, "vmm lab: %v\n", err)
		return vmm.StatusSetupError
	}
	// A second signal (Ctrl-C reaches vmm-lab from the terminal and again
	// through vmm, which forwards it) is swallowed until Run returns.
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
