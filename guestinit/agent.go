package guestinit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vmm-dev/vmm/guestinit/agent"
	"github.com/vmm-dev/vmm/guestinit/protocol"
	"github.com/vmm-dev/vmm/guestinit/workload"
)

// The guest agent (package agent) runs host commands and copies files
// over the protocol.PortAgent port: in run mode alongside the workload,
// inside its root, whenever the host added the port; in agent mode
// (agent.KernelFlag, no run config) in the initramfs, until the host asks
// for power-off. Programs it starts are children of guestinit, which
// workload.Children keeps apart from the reaper's other exits.

// agentRetry is how often the agent looks for a host again while none is
// connected to the port (QEMU's socket chardev without a client; vmm's
// bridge always has its end open).
const agentRetry = 100 * time.Millisecond

// findAgentPort waits up to wait for the agent port and opens it.
func findAgentPort(ports func() (map[string]string, error), open func(string, int) (*os.File, error), wait time.Duration) (*os.File, error) {
	var path string
	err := waitFor(wait, func() error {
		found, err := ports()
		if err != nil {
			return err
		}
		var ok bool
		if path, ok = found[protocol.PortAgent]; !ok {
			return errPortsMissing
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	f, err := open(path, os.O_RDWR)
	if err != nil {
		return nil, fmt.Errorf("open port %s: %w", protocol.PortAgent, err)
	}
	return f, nil
}

// startAgent serves the agent alongside the workload when the host added
// its port (which may appear a little after the run's own ports, so it is
// looked for up to DeviceWait). Programs run in the workload's root with
// its environment, working directory and user by default, as docker exec
// runs them; Supervise, given children, reaps for them. It serves until
// the machine powers off.
func (r *Runner) startAgent(spec workload.Spec, children *workload.Children) {
	go func() {
		port, err := findAgentPort(r.Ops.Ports, r.Ops.OpenPort, r.DeviceWait)
		if errors.Is(err, errPortsMissing) {
			return // no agent asked for
		}
		if err != nil {
			r.logf("agent: %v", err)
			return
		}
		defer port.Close()
		root := r.Root
		opts := agent.ServeOptions{
			Root: root,
			Env:  spec.Env,
			Dir:  spec.Dir,
			User: &syscall.Credential{Uid: spec.UID, Gid: spec.GID, Groups: spec.Groups},
			LookupUser: func(name string) (*syscall.Credential, error) {
				u, err := workload.LookupUser(workload.RootFS(root), name)
				if err != nil {
					return nil, err
				}
				return &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: u.Groups}, nil
			},
			Start:    children.Start,
			RetryEOF: agentRetry,
			Logf:     r.logf,
		}
		if err := agent.Serve(context.Background(), port, opts); err != nil {
			r.logf("agent: %v", err)
		}
	}()
}

// wantAgentMode tells whether the kernel command line asks for agent
// mode.
func wantAgentMode(cmdline string) bool {
	for _, f := range strings.Fields(cmdline) {
		if f == agent.KernelFlag {
			return true
		}
	}
	return false
}

// AgentMode serves the agent for a machine booted from a kernel and the
// guestinit initramfs alone: programs run in the initramfs (the host puts
// the ones it needs there with PutFile), and the host ends the machine
// with a PowerOff request.
type AgentMode struct {
	// Ports and OpenPort are RunOps'.
	Ports    func() (map[string]string, error)
	OpenPort func(path string, flag int) (*os.File, error)
	PowerOff func() error
	// Reap reaps guestinit's children while the agent serves, handing
	// its programs' exits to children; nil reaps nothing (tests).
	Reap func(ctx context.Context, children *workload.Children) error
	// Console gets guestinit's own messages.
	Console io.Writer
	// PortWait bounds the wait for the agent port.
	PortWait time.Duration
	mu       sync.Mutex // serializes writes to Console
}

// NewAgentMode returns the AgentMode of a real guest.
func NewAgentMode(console io.Writer) *AgentMode {
	return &AgentMode{
		Ports:    func() (map[string]string, error) { return FindPorts(os.DirFS("/sys")) },
		OpenPort: openPort,
		PowerOff: powerOff,
		Reap:     func(ctx context.Context, c *workload.Children) error { return c.Reap(ctx) },
		Console:  console,
		PortWait: RunDeviceWait,
	}
}

// Run serves the agent until the host asks for power-off, and powers off.
// Without an agent port it powers off at once. It returns only when
// power-off fails (or, with a PowerOff that returns, after it).
func (a *AgentMode) Run() error {
	port, err := findAgentPort(a.Ports, a.OpenPort, a.PortWait)
	if err != nil {
		a.logf("agent: no port %s within %v: %v", protocol.PortAgent, a.PortWait, err)
	} else if a.serve(port) {
		return nil
	}
	if err := a.PowerOff(); err != nil {
		return fmt.Errorf("power off: %w", err)
	}
	return nil
}

// serve serves the agent on port until a PowerOff request powered the
// machine off (true) or the port failed.
func (a *AgentMode) serve(port *os.File) (poweredOff bool) {
	defer port.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	children := workload.NewChildren()
	if a.Reap != nil {
		go func() {
			if err := a.Reap(ctx, children); err != nil && !errors.Is(err, context.Canceled) {
				a.logf("reap: %v", err)
			}
		}()
	}
	var once sync.Once
	opts := agent.ServeOptions{
		Start: children.Start,
		PowerOff: func() error {
			if err := a.PowerOff(); err != nil {
				return err
			}
			once.Do(func() { poweredOff = true; cancel() })
			return nil
		},
		RetryEOF: agentRetry,
		Logf:     a.logf,
	}
	if err := agent.Serve(ctx, port, opts); err != nil && !errors.Is(err, context.Canceled) {
		a.logf("agent: %v", err)
	}
	return poweredOff
}

func (a *AgentMode) logf(format string, args ...any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	fmt.Fprintf(a.Console, "guestinit: "+format+"\n", args...)
}
