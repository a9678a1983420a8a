package vmtest

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/guestinit/agent"
	"github.com/vmm-dev/vmm/guestinit/protocol"
)

// AgentCmdline is what a kernel VM's command line needs for guestinit to
// serve the agent port without running a workload.
const AgentCmdline = "vmm.agent=1"

const agentPort = protocol.PortAgent

// AgentTimeout bounds each Exec, PutFile and GetFile, including the wait
// for the guest's agent to come up.
var AgentTimeout = 2 * time.Minute

// agentSocket returns a path for a VM's agent socket, short enough for a
// unix socket address, removed when the test ends.
func agentSocket(t testing.TB) string {
	dir, err := os.MkdirTemp("", "vmtest-agent-")
	if err != nil {
		t.Fatalf("vmtest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "agent.sock")
}

// Agent returns the client of the VM's agent, connecting on first use
// (vmm creates the socket as it starts).
func (vm *VM) Agent() *agent.Client {
	vm.t.Helper()
	if vm.agentPath == "" {
		vm.t.Fatalf("vmtest: the VM has no agent: set Config.Agent")
	}
	vm.agentMu.Lock()
	defer vm.agentMu.Unlock()
	if vm.agent != nil {
		return vm.agent
	}
	deadline := time.Now().Add(AgentTimeout)
	for {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		c, err := agent.Dial(ctx, vm.agentPath)
		cancel()
		if err == nil {
			vm.agent = c
			vm.t.Cleanup(func() { c.Close() })
			return c
		}
		if vm.exited() || time.Now().After(deadline) {
			vm.t.Fatalf("vmtest: connect to the agent at %s: %v%s", vm.agentPath, err, vm.report())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ExecResult is what a command run in the guest did.
type ExecResult struct {
	Stdout, Stderr []byte
	Status         int
}

// Exec runs argv in the guest (in an image VM, inside its root, as docker
// exec does) and returns its output and exit status. A failure to run it
// at all fails the test.
func (vm *VM) Exec(argv ...string) ExecResult {
	vm.t.Helper()
	return vm.ExecCmd(agent.Cmd{Argv: argv})
}

// ExecCmd is Exec with stdin, env, working directory and user.
func (vm *VM) ExecCmd(cmd agent.Cmd) ExecResult {
	vm.t.Helper()
	c := vm.Agent()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	ctx, cancel := context.WithTimeout(context.Background(), AgentTimeout)
	defer cancel()
	status, err := c.Exec(ctx, cmd)
	if err != nil {
		vm.t.Fatalf("vmtest: exec %q in the guest: %v%s", cmd.Argv, err, vm.report())
	}
	return ExecResult{Stdout: out.Bytes(), Stderr: errb.Bytes(), Status: status}
}

// PutFile writes data to guestPath in the guest with mode.
func (vm *VM) PutFile(guestPath string, data []byte, mode fs.FileMode) {
	vm.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), AgentTimeout)
	defer cancel()
	if err := vm.Agent().PutFile(ctx, guestPath, bytes.NewReader(data), mode); err != nil {
		vm.t.Fatalf("vmtest: put %s into the guest: %v%s", guestPath, err, vm.report())
	}
}

// GetFile reads guestPath from the guest.
func (vm *VM) GetFile(guestPath string) []byte {
	vm.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), AgentTimeout)
	defer cancel()
	var b bytes.Buffer
	if err := vm.Agent().GetFile(ctx, guestPath, &b); err != nil {
		vm.t.Fatalf("vmtest: get %s from the guest: %v%s", guestPath, err, vm.report())
	}
	return b.Bytes()
}

// PowerOff asks the guest's agent to power the VM off (a kernel VM in
// agent mode; an image VM ends when its workload does).
func (vm *VM) PowerOff() {
	vm.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), AgentTimeout)
	defer cancel()
	if err := vm.Agent().PowerOff(ctx); err != nil && !errors.Is(err, context.Canceled) {
		vm.t.Fatalf("vmtest: power off: %v%s", err, vm.report())
	}
}
