package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/vmm-dev/vmm/internal/companion"
	"github.com/vmm-dev/vmm/vmm"
)

// runLab runs `vmm lab` in vmm-lab (the lab and its TOML parser live
// there, so this binary, which every VM runs, stays lean) with this
// process's stdio, and returns its status. vmm-lab starts each VM as this
// vmm: it gets this executable's path in $VMM_EXE.
//
// Ctrl-C on a terminal reaches vmm-lab directly (it is in this process's
// group); SIGINT and SIGTERM sent to this process alone are forwarded, so
// either way the lab stops its VMs cleanly. vmm-lab ignores a second one.
func runLab(args []string, stdout, stderr io.Writer) int {
	tool, err := companion.Find(companion.Lab, companion.LabEnv)
	if err != nil {
		fmt.Fprintf(stderr, "vmm lab: %v\n", err)
		return vmm.StatusSetupError
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "vmm lab: find the vmm binary: %v\n", err)
		return vmm.StatusSetupError
	}
	cmd := exec.Command(tool, args...)
	cmd.Env = append(os.Environ(), companion.VMMEnv+"="+self)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	// If vmm itself is killed, the lab still stops its VMs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "vmm lab: %v\n", err)
		return vmm.StatusSetupError
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case s := <-sigs:
				cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	return labStatus(cmd.Wait(), tool, stderr)
}

// labStatus is vmm-lab's exit status as vmm's: its own, or 128+n when a
// signal n killed it, as a shell reports it.
func labStatus(err error, tool string, stderr io.Writer) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee) && ee.Exited():
		return ee.ExitCode()
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
	}
	fmt.Fprintf(stderr, "vmm lab: %s: %v\n", tool, err)
	return vmm.StatusSetupError
}
