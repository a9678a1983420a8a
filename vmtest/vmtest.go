// Package vmtest boots virtual machines with the vmm command for tests and
// lets a test talk to them: write to the guest's console, wait for patterns
// in its output, and check how the VM ended.
//
// A test starts a VM, drives it and waits for it to end:
//
//	vm := vmtest.Start(t, vmtest.Config{Kernel: kernel, Memory: "128M"})
//	vm.Expect(`ready`, 5*time.Second)
//	vm.SendLine("hi")
//	vm.Expect(`echo: (\w+)`, 5*time.Second)
//	if code := vm.Wait(5 * time.Second); code != 0 { ... }
//
// Each VM is a `vmm boot` process: its stdin is a pipe the test writes to,
// its stdout is the guest console and its stderr is vmm's own messages, kept
// apart. The vmm binary is $VMM_BINARY, or built once per test process; a
// package's TestMain can call Main to remove that build afterwards. Methods
// that can fail call t.Fatalf, so they belong on the test's goroutine.
package vmtest

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/guestinit/agent"
)

// tailBytes is how much of the console and of stderr a failure shows.
const tailBytes = 2048

// Config says what to boot. Empty fields leave vmm's defaults.
type Config struct {
	Kernel  string   // bzImage path (--kernel)
	Initrd  string   // initrd path (--initrd)
	Cmdline string   // kernel command line (--cmdline)
	Memory  string   // guest RAM, e.g. "128M" or "5G" (--memory)
	CPUs    int      // vCPU count (--cpus)
	Args    []string // extra flags, appended after the ones above
	// NetNS runs the VMM inside this network namespace (`ip netns exec`),
	// so its TAP devices and traffic stay there.
	NetNS string

	// Image runs an OCI image's workload with `vmm run` instead of
	// booting Kernel: Cmd replaces the image's command and Env adds -e
	// values. The VM's console is then the workload's stdout, Write feeds
	// its stdin (vmm run -i), and Stderr carries the workload's stderr
	// with vmm's own messages.
	Image string
	Cmd   []string
	Env   []string
	// Disks are extra virtio-blk disks, PATH or PATH,ro.
	Disks []string
	// NICs are network devices on switched segments (NewNetwork), eth0
	// first.
	NICs []NIC
	// Agent adds the guest agent's port (guestinit serves it), bridged to
	// a socket for Exec, PutFile and GetFile. An image's guest always has
	// guestinit; a kernel VM needs the guestinit initramfs, and vmtest
	// adds vmm.agent=1 to its command line.
	Agent bool
}

// args is the vmm command line for c, without the program name; agent is
// the agent socket's path when c.Agent is set.
func (c Config) args(agent string) []string {
	var args []string
	if c.Image != "" {
		args = []string{"run", "-i"}
	} else {
		args = []string{"boot", "--kernel", c.Kernel}
		if c.Initrd != "" {
			args = append(args, "--initrd", c.Initrd)
		}
		cmdline := c.Cmdline
		if c.Agent {
			if cmdline == "" {
				cmdline = "console=ttyS0"
			}
			cmdline += " " + AgentCmdline
		}
		if cmdline != "" {
			args = append(args, "--cmdline", cmdline)
		}
	}
	if c.Memory != "" {
		args = append(args, "--memory", c.Memory)
	}
	if c.CPUs != 0 {
		args = append(args, "--cpus", strconv.Itoa(c.CPUs))
	}
	for _, d := range c.Disks {
		args = append(args, "--disk", d)
	}
	for i, n := range c.NICs {
		spec := "socket=" + n.Network.path + ",mac=" + n.MAC
		if i == 0 && n.IP != "" && c.Image != "" {
			spec += ",ip=" + n.IP
		}
		args = append(args, "--net", spec)
	}
	if c.Agent {
		if c.Image != "" {
			args = append(args, "--agent", agent)
		} else {
			args = append(args, "--port", agentPort+",socket="+agent)
		}
	}
	args = append(args, c.Args...)
	if c.Image != "" {
		for _, e := range c.Env {
			args = append(args, "-e", e)
		}
		args = append(args, c.Image)
		args = append(args, c.Cmd...)
	}
	return args
}

// VM is a running (or finished) vmm process.
type VM struct {
	t       testing.TB
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	console *stream
	stderr  *stream
	cursor  int // console offset where the next Expect starts looking

	agentPath string // the agent socket, when Config.Agent
	agentMu   sync.Mutex
	agent     *agent.Client

	done chan struct{} // closed once the process has exited and its output is in
	code int           // exit status, valid after done; -1 if killed by a signal
	err  error         // why Wait failed, other than a non-zero status
}

// Result is how a one-shot run ended.
type Result struct {
	Code    int    // vmm's exit status; -1 if it was killed by a signal
	Console string // everything the guest wrote to its console
	Stderr  string // vmm's own messages
}

// Start boots a VM as cfg says. The VM is killed when the test ends, if it
// is still running; if the test failed, the ends of its console and stderr
// are logged.
func Start(t testing.TB, cfg Config) *VM {
	t.Helper()
	var agent string
	if cfg.Agent {
		agent = agentSocket(t)
	}
	bin, args := Binary(t), cfg.args(agent)
	if cfg.NetNS != "" {
		// ip execs the VMM in place, so signals and the exit status are its.
		args = append([]string{"netns", "exec", cfg.NetNS, bin}, args...)
		bin = "ip"
	}
	vm := start(t, bin, args)
	vm.agentPath = agent
	return vm
}

// Run boots a VM, waits up to timeout for it to end and returns what it
// printed and its exit status. It is for guests that need no input.
func Run(t testing.TB, cfg Config, timeout time.Duration) Result {
	t.Helper()
	vm := Start(t, cfg)
	code := vm.Wait(timeout)
	return Result{Code: code, Console: vm.Console(), Stderr: vm.Stderr()}
}

func start(t testing.TB, bin string, args []string) *VM {
	t.Helper()
	vm := &VM{
		t:       t,
		cmd:     exec.Command(bin, args...),
		console: newStream(),
		stderr:  newStream(),
		done:    make(chan struct{}),
	}
	// If the test process dies, its VMs must not outlive it.
	vm.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// A grandchild holding the output pipes must not stall Wait forever.
	vm.cmd.WaitDelay = time.Second
	vm.cmd.Stdout = vm.console
	vm.cmd.Stderr = vm.stderr
	stdin, err := vm.cmd.StdinPipe()
	if err != nil {
		t.Fatalf("vmtest: stdin pipe: %v", err)
	}
	vm.stdin = stdin
	if err := vm.cmd.Start(); err != nil {
		t.Fatalf("vmtest: start %s: %v", bin, err)
	}
	go vm.reap()
	t.Cleanup(vm.cleanup)
	return vm
}

// reap waits for the process; exec has copied all of its output by then.
func (vm *VM) reap() {
	err := vm.cmd.Wait()
	vm.code = vm.cmd.ProcessState.ExitCode()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		vm.err = err
	}
	vm.console.close()
	vm.stderr.close()
	close(vm.done)
}

func (vm *VM) cleanup() {
	if !vm.exited() {
		vm.kill()
	}
	if vm.t.Failed() {
		vm.t.Logf("vmtest: %s\nconsole (last %d bytes):\n%s\nvmm stderr (last %d bytes):\n%s",
			vm.cmd, tailBytes, vm.console.tail(tailBytes), tailBytes, vm.stderr.tail(tailBytes))
	}
}

func (vm *VM) exited() bool {
	select {
	case <-vm.done:
		return true
	default:
		return false
	}
}

func (vm *VM) kill() {
	_ = vm.cmd.Process.Kill() // fails only if it has already exited
	<-vm.done
}

// Expect waits up to timeout for the console output after the previous
// match to match the regular expression re, and returns the match and its
// submatches. Output before the end of a match is consumed: the next Expect
// looks only after it, as in expect(1). On a timeout, or if the VM ends
// first, the test fails with the pattern and the ends of console and stderr.
func (vm *VM) Expect(re string, timeout time.Duration) []string {
	vm.t.Helper()
	rx, err := regexp.Compile(re)
	if err != nil {
		vm.t.Fatalf("vmtest: Expect: bad pattern: %v", err)
	}
	subs, next, res := vm.console.waitMatch(rx, vm.cursor, timeout)
	switch res {
	case timedOut:
		vm.t.Fatalf("vmtest: console did not match %q within %v%s", re, timeout, vm.report())
	case ended:
		<-vm.done // the console closes just before done
		vm.t.Fatalf("vmtest: vmm exited with status %d before the console matched %q%s", vm.code, re, vm.report())
	}
	vm.cursor = next
	return subs
}

// report is the end of a failure message: the unmatched console and stderr.
func (vm *VM) report() string {
	return "\nconsole since the last match (last " + strconv.Itoa(tailBytes) + " bytes):\n" +
		tail(vm.Console()[vm.cursor:], tailBytes) +
		"\nvmm stderr (last " + strconv.Itoa(tailBytes) + " bytes):\n" + vm.stderr.tail(tailBytes)
}

// Write sends p to the guest's console input.
func (vm *VM) Write(p []byte) {
	vm.t.Helper()
	if _, err := vm.stdin.Write(p); err != nil {
		vm.t.Fatalf("vmtest: write to console: %v%s", err, vm.report())
	}
}

// SendLine sends s and a newline to the guest's console input.
func (vm *VM) SendLine(s string) {
	vm.t.Helper()
	vm.Write([]byte(s + "\n"))
}

// Signal sends sig to the vmm process, e.g. to check how it stops on
// SIGINT or SIGTERM.
func (vm *VM) Signal(sig os.Signal) {
	vm.t.Helper()
	if err := vm.cmd.Process.Signal(sig); err != nil {
		vm.t.Fatalf("vmtest: signal vmm: %v", err)
	}
}

// CloseInput closes the console input, so vmm sees end of file.
func (vm *VM) CloseInput() {
	vm.t.Helper()
	if err := vm.stdin.Close(); err != nil {
		vm.t.Fatalf("vmtest: close console input: %v", err)
	}
}

// Wait waits up to timeout for the VM to end and returns vmm's exit status
// (-1 if a signal killed it). On a timeout it kills the VM and fails.
func (vm *VM) Wait(timeout time.Duration) int {
	vm.t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-vm.done:
	case <-timer.C:
		vm.kill()
		vm.t.Fatalf("vmtest: vmm still running after %v, killed%s", timeout, vm.report())
	}
	if vm.err != nil {
		vm.t.Fatalf("vmtest: wait for vmm: %v", vm.err)
	}
	return vm.code
}

// Console returns everything the guest has written to its console so far.
func (vm *VM) Console() string { return vm.console.String() }

// Stderr returns everything vmm has written to its stderr so far.
func (vm *VM) Stderr() string { return vm.stderr.String() }

// PID is the vmm process's id, for tests that inspect it (/proc/PID).
func (vm *VM) PID() int { return vm.cmd.Process.Pid }
