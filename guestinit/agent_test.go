package guestinit

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmm-dev/vmm/guestinit/agent"
	"github.com/vmm-dev/vmm/guestinit/protocol"
)

func TestWantAgentMode(t *testing.T) {
	for cmdline, want := range map[string]bool{
		"console=ttyS0 vmm.agent=1 quiet": true,
		"vmm.agent=1":                     true,
		"console=ttyS0":                   false,
		"vmm.agent=0":                     false,
		"vmm.agent=10":                    false,
	} {
		if got := wantAgentMode(cmdline); got != want {
			t.Errorf("wantAgentMode(%q) = %v, want %v", cmdline, got, want)
		}
	}
}

// Agent mode comes after run mode and instead of the checks; power-off is
// its business.
func TestRun_AgentMode_ServesInsteadOfChecks(t *testing.T) {
	r := &recorder{pid: 1}
	ops := r.ops()
	ops.AgentMode = func() bool { return true }
	ops.ServeAgent = func(io.Writer) error { r.calls = append(r.calls, "agent"); return nil }
	var console bytes.Buffer
	if err := Run(&console, ops, Mounts()); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(r.calls, ", "), "mount /proc, mount /sys, mount /dev, modules, agent"; got != want {
		t.Errorf("calls = %s, want %s", got, want)
	}
	r = &recorder{pid: 1, runMode: true}
	ops = r.ops()
	ops.AgentMode = func() bool { return true }
	if err := Run(&console, ops, Mounts()); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(r.calls, ", "), "mount /proc, mount /sys, mount /dev, modules, workload"; got != want {
		t.Errorf("with a run config: calls = %s, want %s", got, want)
	}
}

// agentPort is a socket pair standing in for the agent port: the guest's
// end as the *os.File guestinit opens, the host's as a net.Conn.
func agentPort(t *testing.T) (guest *os.File, host net.Conn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	guest = os.NewFile(uintptr(fds[0]), "vport0p1")
	hf := os.NewFile(uintptr(fds[1]), "host")
	defer hf.Close()
	if host, err = net.FileConn(hf); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { guest.Close(); host.Close() })
	return guest, host
}

// AgentMode waits for the port, serves programs and files, and powers off
// when the host asks, once.
func TestAgentMode_ServesUntilPowerOff(t *testing.T) {
	guest, host := agentPort(t)
	var calls []string
	seen := 0
	var console bytes.Buffer
	a := &AgentMode{
		Ports: func() (map[string]string, error) {
			// The port shows up on the third look, as after a driver's probe.
			if seen++; seen < 3 {
				return map[string]string{protocol.PortStdout: "/dev/vport0p0"}, nil
			}
			return map[string]string{protocol.PortAgent: "/dev/vport0p1"}, nil
		},
		OpenPort: func(path string, flag int) (*os.File, error) {
			calls = append(calls, "open "+path+" "+map[bool]string{true: "rw", false: "?"}[flag == os.O_RDWR])
			return guest, nil
		},
		PowerOff: func() error { calls = append(calls, "poweroff"); return nil },
		Console:  &console,
		PortWait: 5 * time.Second,
	}
	done := make(chan error, 1)
	go func() { done <- a.Run() }()

	c := agent.NewClient(host)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	status, err := c.Exec(ctx, agent.Cmd{Argv: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, Stdout: &stdout, Stderr: &stderr})
	if err != nil || status != 3 || stdout.String() != "out\n" || stderr.String() != "err\n" {
		t.Errorf("Exec = %d, %v, stdout %q stderr %q; want 3, out, err", status, err, &stdout, &stderr)
	}
	dir := t.TempDir()
	if err := c.PutFile(ctx, dir+"/f", strings.NewReader("put"), 0o600); err != nil {
		t.Errorf("PutFile: %v", err)
	}
	if err := c.PowerOff(ctx); err != nil {
		t.Fatalf("PowerOff: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run still serving after PowerOff")
	}
	if got, want := strings.Join(calls, ", "), "open /dev/vport0p1 rw, poweroff"; got != want {
		t.Errorf("calls = %s, want %s", got, want)
	}
	if console.Len() != 0 {
		t.Errorf("console: %q, want nothing", &console)
	}
}

func TestAgentMode_NoPort_PowersOff(t *testing.T) {
	var calls []string
	var console bytes.Buffer
	a := &AgentMode{
		Ports:    func() (map[string]string, error) { return map[string]string{}, nil },
		OpenPort: func(string, int) (*os.File, error) { return nil, errors.New("not expected") },
		PowerOff: func() error { calls = append(calls, "poweroff"); return nil },
		Console:  &console,
		PortWait: 50 * time.Millisecond,
	}
	if err := a.Run(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(calls, ",") != "poweroff" || !strings.Contains(console.String(), "guestinit: agent: no port vmm.agent") {
		t.Errorf("calls %q, console %q", calls, &console)
	}
}
