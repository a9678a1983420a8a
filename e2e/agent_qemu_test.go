package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/guestinit/agent"
	"github.com/vmm-dev/vmm/guestinit/protocol"
	"github.com/vmm-dev/vmm/images"
)

// The agent's reference tier: guestinit serves the agent under QEMU's
// software emulator with Debian's kernel, on a virtserialport named
// vmm.agent whose socket chardev the test connects to, speaking the raw
// byte stream (agent.NewClient). Agent mode boots the kernel with the
// guestinit initramfs alone and vmm.agent=1; run mode boots a busybox run
// with the port added, as `vmm run --agent` does.

// qemuAgent is a QEMU process whose agent port the test is connected to.
type qemuAgent struct {
	proc   *guestProc
	client *agent.Client
}

// startQEMUAgent starts QEMU with args and the agent port, and connects.
func startQEMUAgent(t *testing.T, args ...string) *qemuAgent {
	t.Helper()
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Fatal("qemu-system-x86_64 not found: run `make deps` (installs Debian's qemu-system-x86)")
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	// One virtio-serial device: the ports args adds go on it too. QEMU
	// listens on the agent's socket; without wait=off it would not start
	// the guest until the test connected.
	args = append([]string{
		"-accel", "tcg", "-M", qemuMachine, "-cpu", "max", "-m", "256M", "-nographic", "-no-reboot",
		"-device", "virtio-serial-pci,disable-legacy=on",
		"-chardev", "socket,id=agent,path=" + sock + ",server=on,wait=off",
		"-device", "virtserialport,name=" + protocol.PortAgent + ",chardev=agent",
	}, args...)
	q := &qemuAgent{proc: startGuestProc(t, exec.Command(qemu, args...))}
	g := q.proc
	var conn net.Conn
	for deadline := time.Now().Add(10 * time.Second); conn == nil; time.Sleep(20 * time.Millisecond) {
		if conn, err = net.Dial("unix", sock); err != nil && time.Now().After(deadline) {
			t.Fatalf("QEMU's agent socket: %v; console:\n%s", err, consoleTail(g.console.String()))
		}
	}
	q.client = agent.NewClient(conn)
	t.Cleanup(func() { q.client.Close() })
	return q
}

// exec runs argv in the guest and returns its status, stdout and stderr.
func (q *qemuAgent) exec(t *testing.T, cmd agent.Cmd) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), linuxBootTime)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	status, err := q.client.Exec(ctx, cmd)
	if err != nil {
		var se *agent.StartError
		if !errors.As(err, &se) {
			t.Fatalf("exec %q: %v; console end:\n%s", cmd.Argv, err, consoleTail(q.proc.console.String()))
		}
		stderr.WriteString(se.Message)
	}
	return status, stdout.String(), stderr.String()
}

// waitPowerOff waits for QEMU to exit after the guest powered off.
func (q *qemuAgent) waitPowerOff(t *testing.T) {
	t.Helper()
	if err := q.proc.wait(linuxBootTime); err != nil {
		t.Fatalf("%v; console end:\n%s", err, consoleTail(q.proc.console.String()))
	}
	if out := q.proc.console.String(); !strings.Contains(out, poweredOff) {
		t.Errorf("QEMU exited without %q; console end:\n%s", poweredOff, consoleTail(out))
	}
}

// busyboxBinary is the busybox image's static /bin/busybox: the programs
// the agent-mode guest runs once the host put it there.
func busyboxBinary(t *testing.T, g *runGuest) []byte {
	t.Helper()
	return imageFile(t, g.image, "bin/busybox")
}

func TestLinux_QEMUTCG_Agent(t *testing.T) {
	g := newRunGuest(t)
	t.Run("AgentMode", func(t *testing.T) {
		t.Parallel()
		testAgentMode(t, g)
	})
	t.Run("RunMode", func(t *testing.T) {
		t.Parallel()
		testAgentRunMode(t, g)
	})
}

// testAgentMode: the host puts busybox into the initramfs, runs programs
// (stdout, stderr and exit status apart; stdin; a missing one), copies a
// 1 MiB file in and out, and powers the machine off.
func testAgentMode(t *testing.T, g *runGuest) {
	start := time.Now()
	q := startQEMUAgent(t, "-kernel", g.kernel.Path, "-initrd", g.base,
		"-append", linuxCmdline+" quiet "+agent.KernelFlag, "-nic", "none")
	ctx, cancel := context.WithTimeout(context.Background(), linuxBootTime)
	defer cancel()

	bb := busyboxBinary(t, g)
	if err := q.client.PutFile(ctx, "/busybox", bytes.NewReader(bb), 0o755); err != nil {
		t.Fatalf("put busybox: %v; console end:\n%s", err, consoleTail(q.proc.console.String()))
	}
	t.Logf("agent up and busybox (%d bytes) put %v after QEMU started", len(bb), time.Since(start).Round(time.Millisecond))

	if status, out, errOut := q.exec(t, agent.Cmd{Argv: []string{"/busybox", "uname", "-r"}}); status != 0 || out != g.kernel.Version+"\n" || errOut != "" {
		t.Errorf("uname -r: %d, stdout %q, stderr %q; want 0, %q", status, out, errOut, g.kernel.Version+"\n")
	}
	status, out, errOut := q.exec(t, agent.Cmd{
		Argv: []string{"/busybox", "sh", "-c", `echo "out $FOO $(pwd)"; echo err >&2; exit 3`},
		Env:  []string{"FOO=bar"}, Dir: "/proc",
	})
	if status != 3 || out != "out bar /proc\n" || errOut != "err\n" {
		t.Errorf("sh: %d, stdout %q, stderr %q; want 3, %q, %q", status, out, errOut, "out bar /proc\n", "err\n")
	}
	if status, _, errOut := q.exec(t, agent.Cmd{Argv: []string{"no-such-program"}}); status != 127 || !strings.Contains(errOut, "not found") {
		t.Errorf("a missing program: %d, %q; want 127, not found", status, errOut)
	}

	data := randomBytes(t, 1<<20)
	want := sha256Hex(data)
	status, out, errOut = q.exec(t, agent.Cmd{Argv: []string{"/busybox", "sha256sum"}, Stdin: bytes.NewReader(data)})
	if status != 0 || !strings.HasPrefix(out, want+" ") {
		t.Errorf("sha256sum of 1 MiB of stdin: %d, %q, %q; want %s", status, out, errOut, want)
	}
	start = time.Now()
	if err := q.client.PutFile(ctx, "/data.bin", bytes.NewReader(data), 0o600); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if err := q.client.GetFile(ctx, "/data.bin", h); err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		t.Errorf("1 MiB put and got back: sha256 %s, want %s", got, want)
	}
	t.Logf("1 MiB put and got back in %v", time.Since(start).Round(time.Millisecond))
	if _, out, _ := q.exec(t, agent.Cmd{Argv: []string{"/busybox", "sha256sum", "/data.bin"}}); !strings.HasPrefix(out, want+" ") {
		t.Errorf("the guest's sha256sum of the file: %q, want %s", out, want)
	}

	if err := q.client.PowerOff(ctx); err != nil {
		t.Fatal(err)
	}
	q.waitPowerOff(t)
	if c := q.proc.console.String(); strings.Contains(c, "guestinit: agent") {
		t.Errorf("guestinit complained on the console:\n%s", consoleTail(c))
	}
}

// testAgentRunMode: alongside a busybox workload, programs run inside the
// container's root with its environment and working directory, and a
// file the host puts there is the workload's to see: here, its cue to
// exit.
func testAgentRunMode(t *testing.T, g *runGuest) {
	cfg := g.runConfig(t, "sh", "-c", `while [ ! -e /tmp/stop ]; do sleep 0.1; done; cat /tmp/stop; exit 7`)
	cfg.Env = []string{"FOO=from-run"}
	cfg.WorkingDir = "/srv"
	dir := t.TempDir()
	initrd, err := os.Create(filepath.Join(dir, "run.cpio"))
	if err != nil {
		t.Fatal(err)
	}
	if err := images.WriteRunInitramfs(initrd, g.base, cfg); err != nil {
		t.Fatal(err)
	}
	initrd.Close()
	control := hostSocket(t, filepath.Join(dir, "control.sock"), nil, false)
	stdout := filepath.Join(dir, "stdout")
	q := startQEMUAgent(t, "-kernel", g.kernel.Path, "-initrd", initrd.Name(), "-append", runCmdline, "-nic", "none",
		"-drive", "file="+g.rootfs+",if=none,id=root,format=raw,readonly=on",
		"-device", "virtio-blk-pci,drive=root,disable-legacy=on",
		"-chardev", "file,id=out,path="+stdout,
		"-device", "virtserialport,name="+protocol.PortStdout+",chardev=out",
		"-chardev", "null,id=err",
		"-device", "virtserialport,name="+protocol.PortStderr+",chardev=err",
		"-chardev", "socket,id=ctl,path="+filepath.Join(dir, "control.sock"),
		"-device", "virtserialport,name="+protocol.PortControl+",chardev=ctl")

	status, out, errOut := q.exec(t, agent.Cmd{Argv: []string{"sh", "-c", `echo "$FOO $(pwd) $(id -u)"; ls /bin/busybox; test -e /init || echo no-initramfs`}})
	if want := "from-run /srv 0\n/bin/busybox\nno-initramfs\n"; status != 0 || out != want {
		t.Errorf("exec in the container: %d, stdout %q, stderr %q; want 0, %q", status, out, errOut, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), linuxBootTime)
	defer cancel()
	if err := q.client.PutFile(ctx, "/tmp/stop", strings.NewReader("stop from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	q.waitPowerOff(t)
	select {
	case data := <-control:
		if want := protocol.ExitMessage(7).String() + "\n"; string(data) != want {
			t.Errorf("control port = %q, want %q", data, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the control socket stayed open after QEMU exited")
	}
	if b, _ := os.ReadFile(stdout); string(b) != "stop from the host\n" {
		t.Errorf("the workload's stdout = %q, want the file the host put", b)
	}
}
