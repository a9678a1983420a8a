package guestinit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/guestinit/protocol"
	"github.com/vmm-dev/vmm/internal/testprog"
	"golang.org/x/sys/unix"
)

// guestRun is one run of the guestinit role (runhelpers_test.go), with the
// host's ends of its ports: a socket pair for control, pipes for the rest.
type guestRun struct {
	cmd     *exec.Cmd
	root    string
	result  string
	control *os.File
	stdout  *bufio.Reader
	stdin   *os.File      // nil when there is no stdin port
	stderr  chan []byte   // everything on the stderr port, once it ends
	ctlOut  chan []byte   // everything guestinit sent on control
	console *bytes.Buffer // guestinit's console: the role's stdout and stderr
}

// runSetup is how the test machine differs from a healthy one.
type runSetup struct {
	ports       []string      // the ports there are; nil: all four
	wait        time.Duration // Runner.DeviceWait; 0: 5 s
	diskMissing bool
	config      []byte // the raw run config, instead of Marshal's
}

// outcome is what a run left behind.
type outcome struct {
	stdout, stderr, control, console string
	calls                            []string
	runErr                           string
}

var allPorts = []string{protocol.PortStdout, protocol.PortStderr, protocol.PortControl, protocol.PortStdin}

// workloadConfig runs this test binary in the workload role with args.
func workloadConfig(args ...string) protocol.RunConfig {
	return protocol.RunConfig{
		Version: protocol.RunConfigVersion,
		Image: protocol.ImageConfig{
			Cmd: append([]string{testExe}, args...),
			// The race detector waits a second at exit by default.
			Env: []string{roleEnv + "=workload", "GORACE=atexit_sleep_ms=0"},
		},
	}
}

// testRoot is the workload's root: the role binds the host's programs
// into it; the image's accounts are root and app (1000:1000).
func testRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for name, data := range map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
		"etc/group":  "root:x:0:\napp:x:1000:\n",
	} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func startRun(t *testing.T, cfg protocol.RunConfig, setup runSetup) *guestRun {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("run mode runs as PID 1 of namespaces of its own, which needs root")
	}
	data := setup.config
	if data == nil {
		var err error
		if data, err = cfg.Marshal(); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	configPath := filepath.Join(dir, "run.json")
	if err := os.WriteFile(configPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	ports := setup.ports
	if ports == nil {
		ports = allPorts
	}
	wait := setup.wait
	if wait == 0 {
		wait = 5 * time.Second
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	g := &guestRun{root: testRoot(t), result: filepath.Join(dir, "result.json"), console: &bytes.Buffer{}}
	g.cmd = exec.CommandContext(ctx, exe)
	g.cmd.Env = []string{
		roleEnv + "=guestinit", "GORACE=atexit_sleep_ms=0", rootEnv + "=" + g.root, configEnv + "=" + configPath,
		portsEnv + "=" + strings.Join(ports, ","), waitEnv + "=" + wait.String(), resultEnv + "=" + g.result,
	}
	if setup.diskMissing {
		g.cmd.Env = append(g.cmd.Env, diskEnv+"=missing")
	}
	g.cmd.Stdout, g.cmd.Stderr = g.console, g.console
	g.cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWNET,
		Pdeathsig:  syscall.SIGKILL,
	}

	// The guest's ends, in portFDs order: fd 3 control, 4 stdout, 5
	// stderr, 6 stdin.
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	g.control = os.NewFile(uintptr(pair[0]), "control")
	guestControl := os.NewFile(uintptr(pair[1]), "guest control")
	stdoutR, stdoutW := pipe(t)
	stderrR, stderrW := pipe(t)
	stdinR, stdinW := pipe(t)
	g.cmd.ExtraFiles = []*os.File{guestControl, stdoutW, stderrW, stdinR}
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, f := range g.cmd.ExtraFiles {
		f.Close()
	}
	t.Cleanup(func() { g.control.Close(); stdoutR.Close(); stdinW.Close() })
	g.stdout = bufio.NewReader(stdoutR)
	if slices.Contains(ports, protocol.PortStdin) {
		g.stdin = stdinW
	} else {
		stdinW.Close()
	}
	g.stderr, g.ctlOut = readAll(stderrR), readAll(g.control)
	return g
}

func pipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	return r, w
}

// readAll reads r to its end in the background.
func readAll(r io.Reader) chan []byte {
	c := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(r)
		c <- b
	}()
	return c
}

// line reads the workload's next stdout line, without the line ending.
func (g *guestRun) line(t *testing.T) string {
	t.Helper()
	s, err := g.stdout.ReadString('\n')
	if err != nil {
		t.Fatalf("stdout after %q: %v; console:\n%s", s, err, g.console)
	}
	return strings.TrimRight(s, "\r\n")
}

func (g *guestRun) send(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(g.control, line); err != nil {
		t.Fatal(err)
	}
}

// finish waits for guestinit to power off and collects everything.
func (g *guestRun) finish(t *testing.T) outcome {
	t.Helper()
	stdout := readAll(g.stdout)
	err := g.cmd.Wait()
	o := outcome{stdout: string(<-stdout), stderr: string(<-g.stderr), console: g.console.String()}
	if err != nil {
		t.Fatalf("guestinit role: %v; console:\n%s", err, o.console)
	}
	g.control.Close() // guestinit's end closed when it exited: the read has ended
	o.control = string(<-g.ctlOut)
	data, err := os.ReadFile(g.result)
	if err != nil {
		t.Fatalf("%v; console:\n%s", err, o.console)
	}
	var res guestinitResult
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	o.calls, o.runErr = res.Calls, res.RunErr
	if o.runErr != "" {
		t.Errorf("Runner.Run: %s", o.runErr)
	}
	if len(o.calls) == 0 || o.calls[len(o.calls)-1] != "poweroff" {
		t.Errorf("last operation of %q is not poweroff", o.calls)
	}
	return o
}

func exitLine(status int) string { return "exit " + strconv.Itoa(status) + "\n" }

func TestRunner_Setup_InOrder(t *testing.T) {
	t.Parallel()
	cfg := workloadConfig("exit", "0")
	cfg.Hostname = "box"
	o := startRun(t, cfg, runSetup{ports: allPorts[:3]}).finish(t)
	want := []string{
		"open fd:4 w", "open fd:5 w", "open fd:3 rw", // stdout, stderr, control; no stdin without -i
		"stat /dev/vda",
		"mount /run/vmm/lower", "mount /run/vmm/rw", "mkdir /run/vmm/rw/upper", "mkdir /run/vmm/rw/work", "mount /run/vmm/root",
		"mount $ROOT/proc", "mount $ROOT/sys", "mount $ROOT/dev", "mount $ROOT/dev/pts", "mount $ROOT/dev/shm", "mount $ROOT/run", "mount $ROOT/tmp",
		"hostname box", "network false",
		"poweroff",
	}
	if !slices.Equal(o.calls, want) {
		t.Errorf("operations:\n %s\nwant\n %s", strings.Join(o.calls, "\n "), strings.Join(want, "\n "))
	}
	if o.control != exitLine(0) {
		t.Errorf("control = %q, want %q", o.control, exitLine(0))
	}
}

// Without -t the ports are the workload's stdout and stderr themselves:
// every byte arrives unchanged, each stream on its own port, and
// guestinit's own messages stay on the console.
func TestRunner_StdoutStderr_ByteExactAndSeparate(t *testing.T) {
	t.Parallel()
	const n = 300 << 10 // several pipe buffers
	o := startRun(t, workloadConfig("output", strconv.Itoa(n)), runSetup{}).finish(t)
	if want := testprog.Payload(n, 'o'); o.stdout != string(want) {
		t.Errorf("stdout: %d bytes, want %d bytes exactly as written", len(o.stdout), len(want))
	}
	if want := testprog.Payload(n, 'e'); o.stderr != string(want) {
		t.Errorf("stderr: %d bytes, want %d bytes exactly as written", len(o.stderr), len(want))
	}
	if o.control != exitLine(0) {
		t.Errorf("control = %q, want %q; console:\n%s", o.control, exitLine(0), o.console)
	}
}

func TestRunner_ExitStatus_OnControl(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		args []string
		want int
	}{
		{"exit 0", []string{"exit", "0"}, 0},
		{"exit 1", []string{"exit", "1"}, 1},
		{"exit 42", []string{"exit", "42"}, 42},
		{"SIGTERM death", []string{"kill-self", "15"}, 128 + 15},
		{"SIGKILL death", []string{"kill-self", "9"}, 128 + 9},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := startRun(t, workloadConfig(tt.args...), runSetup{}).finish(t)
			if o.control != exitLine(tt.want) {
				t.Errorf("control = %q, want %q; console:\n%s", o.control, exitLine(tt.want), o.console)
			}
		})
	}
}

// "signal N" from the host reaches the workload: SIGTERM, which it
// handles, and SIGKILL, which no process can forward from its own
// handlers. A bad line before it is logged on the console and skipped.
func TestRunner_ControlSignal_ReachesWorkload(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		lines string
		want  int
	}{
		{"SIGTERM handled", "signal 15\n", 64 + 15},
		{"SIGKILL", "signal 9\n", 128 + 9},
		{"after a bad line", "launch missiles\nsignal 15\n", 64 + 15},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := startRun(t, workloadConfig("trap", "15"), runSetup{})
			if line := g.line(t); line != "ready" {
				t.Fatalf("workload said %q, want ready", line)
			}
			g.send(t, tt.lines)
			o := g.finish(t)
			if o.control != exitLine(tt.want) {
				t.Errorf("control = %q, want %q; console:\n%s", o.control, exitLine(tt.want), o.console)
			}
			bad := strings.Contains(tt.lines, "missiles")
			if logged := strings.Contains(o.console, "guestinit: control port:"); logged != bad {
				t.Errorf("console %q: bad line logged %v, want %v", o.console, logged, bad)
			}
			if strings.Contains(o.stdout+o.stderr, "guestinit") {
				t.Errorf("guestinit's messages reached the workload's streams: stdout %q stderr %q", o.stdout, o.stderr)
			}
		})
	}
}

// With -i the stdin port is the workload's stdin, byte for byte, and its
// end is the workload's end of file.
func TestRunner_Interactive_StdinReachesWorkload(t *testing.T) {
	t.Parallel()
	cfg := workloadConfig("cat")
	cfg.Interactive = true
	g := startRun(t, cfg, runSetup{})
	in := testprog.Payload(100<<10, 'i')
	go func() {
		g.stdin.Write(in)
		g.stdin.Close()
	}()
	o := g.finish(t)
	if o.stdout != string(in) {
		t.Errorf("stdout: %d bytes, want the %d bytes of stdin", len(o.stdout), len(in))
	}
	if o.control != exitLine(0) {
		t.Errorf("control = %q, want %q; console:\n%s", o.control, exitLine(0), o.console)
	}
}

// With -t the workload gets a terminal of the size the host gave, a
// winsize message resizes it (the workload sees SIGWINCH), input reaches
// it through the terminal, and its output after that is still delivered.
func TestRunner_TTY_WinsizeAndInput(t *testing.T) {
	t.Parallel()
	cfg := workloadConfig("tty")
	cfg.TTY, cfg.Interactive = true, true
	cfg.Terminal = &protocol.TerminalSize{Rows: 24, Cols: 80}
	g := startRun(t, cfg, runSetup{})
	if line := g.line(t); line != "size 24 80" {
		t.Fatalf("workload said %q, want size 24 80", line)
	}
	if line := g.line(t); line != "ready" {
		t.Fatalf("workload said %q, want ready", line)
	}
	g.send(t, "winsize 50 132\n")
	if line := g.line(t); line != "size 50 132" {
		t.Fatalf("after winsize 50 132 the workload said %q", line)
	}
	if _, err := io.WriteString(g.stdin, "hello\n"); err != nil {
		t.Fatal(err)
	}
	o := g.finish(t)
	// The terminal echoes the input and ends lines with CR LF.
	want := "hello\r\ngot hello (<nil>)\r\n" + strings.ReplaceAll(ttyTail, "\n", "\r\n")
	if o.stdout != want {
		t.Errorf("stdout after the input: %d bytes starting %.40q, want %d starting %.40q", len(o.stdout), o.stdout, len(want), want)
	}
	if o.stderr != "" {
		t.Errorf("stderr = %q, want nothing: with -t everything goes to the terminal", o.stderr)
	}
	if o.control != exitLine(3) {
		t.Errorf("control = %q, want %q; console:\n%s", o.control, exitLine(3), o.console)
	}
}

// The workload runs as the image's user, in its working directory, with
// docker's environment, under the run's host name, with loopback (and here
// the run's address on it) up; /dev/null is stdin without -i; and the
// /etc files name the guest.
func TestRunner_Identity_UserDirEnvHostnameNetwork(t *testing.T) {
	t.Parallel()
	cfg := workloadConfig("describe")
	cfg.Hostname, cfg.User, cfg.WorkingDir = "box", "app", "/work/dir"
	cfg.Env = []string{"FOO=bar"}
	cfg.Network = &protocol.NetworkConfig{
		Interface: "lo", Addr: netip.MustParsePrefix("10.0.2.15/24"), Gateway: netip.MustParseAddr("10.0.2.2"),
		DNS:        protocol.DNSConfig{Nameservers: []netip.Addr{netip.MustParseAddr("10.0.2.3")}},
		ExtraHosts: []protocol.HostEntry{{Name: "db", Addr: netip.MustParseAddr("10.0.2.9")}},
	}
	g := startRun(t, cfg, runSetup{})
	o := g.finish(t)
	if o.control != exitLine(0) {
		t.Fatalf("control = %q, want %q; stderr %q; console:\n%s", o.control, exitLine(0), o.stderr, o.console)
	}
	var d description
	if err := json.Unmarshal([]byte(o.stdout), &d); err != nil {
		t.Fatalf("workload output %q: %v", o.stdout, err)
	}
	if d.UID != 1000 || d.GID != 1000 || d.Dir != "/work/dir" || d.Hostname != "box" {
		t.Errorf("uid %d gid %d dir %q hostname %q; want 1000 1000 /work/dir box", d.UID, d.GID, d.Dir, d.Hostname)
	}
	for _, kv := range []string{"FOO=bar", "HOSTNAME=box", "HOME=/home/app", roleEnv + "=workload"} {
		if !slices.Contains(d.Env, kv) {
			t.Errorf("environment %q lacks %s", d.Env, kv)
		}
	}
	if !d.LoopUp || !slices.Contains(d.LoopAddrs, "10.0.2.15/24") || !d.StdinNull {
		t.Errorf("lo up %v with %v, stdin /dev/null %v; want up with 10.0.2.15/24, and /dev/null", d.LoopUp, d.LoopAddrs, d.StdinNull)
	}
	for name, want := range map[string]string{
		"etc/hostname":    "box\n",
		"etc/resolv.conf": "nameserver 10.0.2.3\n",
	} {
		if got, err := os.ReadFile(filepath.Join(g.root, name)); string(got) != want {
			t.Errorf("/%s = %q (%v), want %q", name, got, err, want)
		}
	}
	hosts, _ := os.ReadFile(filepath.Join(g.root, "etc/hosts"))
	for _, want := range []string{"10.0.2.9\tdb\n", "10.0.2.15\tbox\n"} {
		if !strings.Contains(string(hosts), want) {
			t.Errorf("/etc/hosts %q lacks %q", hosts, want)
		}
	}
}

// When the workload cannot start, the user learns why on stderr, in one
// line, with docker's status on control; stdout stays empty, and the
// machine still powers off.
func TestRunner_SetupFailure_ReportedOnStderr(t *testing.T) {
	t.Parallel()
	interactive := workloadConfig("cat")
	interactive.Interactive = true
	unknownUser := workloadConfig("exit", "0")
	unknownUser.User = "nobody-here"
	for _, tt := range []struct {
		name    string
		cfg     protocol.RunConfig
		setup   runSetup
		status  int
		message string
	}{
		{"bad config", protocol.RunConfig{}, runSetup{config: []byte(`{"version": 1, "colour": "red"}`)}, 125, "bad run config"},
		{"stale config", protocol.RunConfig{}, runSetup{config: []byte(`{"version": 99}`)}, 125, "version 99"},
		{"stdin port missing", interactive, runSetup{ports: allPorts[:3], wait: 200 * time.Millisecond}, 125,
			"virtio-console ports vmm.stdin did not appear within 200ms"},
		{"disk missing", workloadConfig("exit", "0"), runSetup{diskMissing: true, wait: 200 * time.Millisecond}, 125,
			"the image disk /dev/vda did not appear within 200ms"},
		{"unknown user", unknownUser, runSetup{}, 125, "nobody-here"},
		{"program not found", protocol.RunConfig{Version: protocol.RunConfigVersion, Args: []string{"no-such-program"}}, runSetup{}, 127,
			`"no-such-program": executable file not found in $PATH`},
		{"program not executable", protocol.RunConfig{Version: protocol.RunConfigVersion, Args: []string{"/etc/passwd"}}, runSetup{}, 126,
			"permission denied"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := startRun(t, tt.cfg, tt.setup).finish(t)
			if !strings.HasPrefix(o.stderr, "guestinit: ") || strings.Count(o.stderr, "\n") != 1 || !strings.Contains(o.stderr, tt.message) {
				t.Errorf("stderr = %q, want one line, guestinit: ...%s...", o.stderr, tt.message)
			}
			if o.stdout != "" {
				t.Errorf("stdout = %q, want nothing", o.stdout)
			}
			if o.control != exitLine(tt.status) {
				t.Errorf("control = %q, want %q", o.control, exitLine(tt.status))
			}
			if !strings.Contains(o.console, strings.TrimSuffix(o.stderr, "\n")) {
				t.Errorf("console %q lacks the error", o.console)
			}
		})
	}
}

// Without a control port the status cannot be reported, but the error
// still reaches stderr and the machine still powers off.
func TestRunner_NoControlPort_ErrorOnStderrThenPowerOff(t *testing.T) {
	t.Parallel()
	o := startRun(t, workloadConfig("exit", "0"), runSetup{ports: allPorts[:2], wait: 200 * time.Millisecond}).finish(t)
	if want := "guestinit: virtio-console ports vmm.control did not appear within 200ms\n"; o.stderr != want {
		t.Errorf("stderr = %q, want %q", o.stderr, want)
	}
	if o.control != "" || !strings.Contains(o.console, "no control port to report exit status 125 on") {
		t.Errorf("control %q, console %q: want nothing, and the status on the console", o.control, o.console)
	}
}
