package guestinit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/guestinit/protocol"
	"github.com/vmm-dev/vmm/internal/testprog"
	"golang.org/x/sys/unix"
)

// The run-mode tests re-execute this test binary in two roles, chosen by
// roleEnv: guestinit, which runs a Runner as PID 1 of new PID, mount, UTS
// and network namespaces, with real workload mounts, host name, loopback
// and supervision, and fakes only for what needs a VM (the image disk, the
// overlay, the virtio ports, power-off); and a workload, which does what
// its arguments say, chrooted in the test's root.
const (
	roleEnv   = "VMM_GUESTINIT_TEST_ROLE"
	rootEnv   = "VMM_GUESTINIT_TEST_ROOT"
	configEnv = "VMM_GUESTINIT_TEST_CONFIG" // file holding the encoded run config
	portsEnv  = "VMM_GUESTINIT_TEST_PORTS"  // the ports there are, comma-separated
	waitEnv   = "VMM_GUESTINIT_TEST_WAIT"   // Runner.DeviceWait
	diskEnv   = "VMM_GUESTINIT_TEST_DISK"   // "missing": the image disk never appears
	resultEnv = "VMM_GUESTINIT_TEST_RESULT"
)

// testExe is where the test binary appears inside the test's root.
const testExe = "/vmm-test/guestinit.test"

// portFDs are the descriptors the test hands guestinit as its ports.
var portFDs = map[string]int{
	protocol.PortControl: 3,
	protocol.PortStdout:  4,
	protocol.PortStderr:  5,
	protocol.PortStdin:   6,
}

// guestinitResult is what the guestinit role reports.
type guestinitResult struct {
	Calls  []string // the faked and real operations, in order, root as $ROOT
	RunErr string   // Runner.Run's error
}

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "guestinit":
		os.Exit(guestinitMain())
	case "workload":
		os.Exit(workloadMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func helperFail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "helper: "+format+"\n", args...)
	return 3
}

func guestinitMain() int {
	if os.Getpid() != 1 {
		return helperFail("guestinit role: pid %d, want 1", os.Getpid())
	}
	root := os.Getenv(rootEnv)
	// Nothing mounted here may reach the host: every mount below is made
	// after this, and the host's directories are bound read-only.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return helperFail("make mounts private: %v", err)
	}
	if err := bindHostDirs(root); err != nil {
		return helperFail("%v", err)
	}
	wait, err := time.ParseDuration(os.Getenv(waitEnv))
	if err != nil {
		return helperFail("wait: %v", err)
	}
	var res guestinitResult
	record := func(format string, args ...any) {
		res.Calls = append(res.Calls, strings.ReplaceAll(fmt.Sprintf(format, args...), root, "$ROOT"))
	}
	r := &Runner{Ops: testRunOps(root, record), Console: os.Stdout, Root: root, DeviceWait: wait}
	if err := r.Run(); err != nil {
		res.RunErr = err.Error()
	}
	data, _ := json.Marshal(res)
	if err := os.WriteFile(os.Getenv(resultEnv), data, 0o644); err != nil {
		return helperFail("write result: %v", err)
	}
	return 0
}

// testRunOps are LinuxRunOps with fakes for what needs a VM. Mounts inside
// root (the workload's /proc, /dev, /dev/pts, ...) are real.
func testRunOps(root string, record func(string, ...any)) RunOps {
	ops := LinuxRunOps()
	ops.ReadConfig = func() ([]byte, error) { return os.ReadFile(os.Getenv(configEnv)) }
	ops.Ports = func() (map[string]string, error) {
		ports := map[string]string{}
		for _, name := range strings.Split(os.Getenv(portsEnv), ",") {
			if fd, ok := portFDs[name]; ok {
				ports[name] = "fd:" + strconv.Itoa(fd)
			}
		}
		return ports, nil
	}
	ops.OpenPort = func(path string, flag int) (*os.File, error) {
		record("open %s %s", path, accessMode(flag))
		fd, err := strconv.Atoi(strings.TrimPrefix(path, "fd:"))
		if err != nil {
			return nil, err
		}
		unix.CloseOnExec(fd) // as open(O_CLOEXEC): the workload gets only its stdio
		return os.NewFile(uintptr(fd), path), nil
	}
	ops.Stat = func(path string) error {
		if os.Getenv(diskEnv) == "missing" {
			return &os.PathError{Op: "stat", Path: path, Err: unix.ENOENT}
		}
		record("stat %s", path)
		return nil
	}
	ops.Mount = func(m Mount) error {
		record("mount %s", m.Target)
		if strings.HasPrefix(m.Target, root+"/") {
			return mount(m)
		}
		return nil
	}
	ops.MkdirAll = func(dir string) error { record("mkdir %s", dir); return nil }
	setHostname := ops.SetHostname
	ops.SetHostname = func(name string) error { record("hostname %s", name); return setHostname(name) }
	network := ops.Network
	ops.Network = func(n *protocol.NetworkConfig) error {
		record("network %v", n != nil)
		return network(n)
	}
	ops.PowerOff = func() error { record("poweroff"); return nil }
	return ops
}

func accessMode(flag int) string {
	switch flag & unix.O_ACCMODE {
	case unix.O_RDONLY:
		return "r"
	case unix.O_WRONLY:
		return "w"
	}
	return "rw"
}

// bindHostDirs makes the host's programs and libraries visible in root,
// read-only, and this test binary as testExe: the workload is this binary
// (and, for shell workloads, the host's sh), chrooted there.
func bindHostDirs(root string) error {
	if _, err := testprog.BindHostDirs(root); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	at := filepath.Join(root, testExe)
	if err := os.MkdirAll(filepath.Dir(at), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(at, nil, 0o755); err != nil {
		return err
	}
	return testprog.BindReadOnly(exe, at)
}

// workloadMain runs one workload behaviour: testprog.Run's, or
//
//	describe       print what it sees (description) as JSON
//	tty            print the terminal's size and "ready", print it again on
//	               SIGWINCH, echo a line of input as "got LINE", write
//	               ttyTail; exit 3
func workloadMain(args []string) int {
	if status, ok := testprog.Run(args); ok {
		return status
	}
	if len(args) == 0 {
		return helperFail("workload: no behaviour")
	}
	switch args[0] {
	case "describe":
		json.NewEncoder(os.Stdout).Encode(describe())
		return 0
	case "tty":
		return ttyWorkload()
	}
	return helperFail("workload: unknown behaviour %q", args[0])
}

// ttyTail is what the tty workload writes last.
var ttyTail = strings.Repeat(strings.Repeat("x", 99)+"\n", 1000)

// description is what the describe workload sees.
type description struct {
	Argv      []string
	Dir       string
	Env       []string
	UID, GID  int
	Hostname  string
	LoopUp    bool
	LoopAddrs []string
	StdinNull bool // stdin is /dev/null
}

func describe() description {
	d := description{Argv: os.Args, Env: os.Environ(), UID: os.Getuid(), GID: os.Getgid()}
	d.Dir, _ = os.Getwd()
	d.Hostname, _ = os.Hostname()
	if lo, err := net.InterfaceByName("lo"); err == nil {
		d.LoopUp = lo.Flags&net.FlagUp != 0
		addrs, _ := lo.Addrs()
		for _, a := range addrs {
			d.LoopAddrs = append(d.LoopAddrs, a.String())
		}
	}
	var st unix.Stat_t
	if unix.Fstat(0, &st) == nil {
		d.StdinNull = st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == unix.Mkdev(1, 3)
	}
	return d
}

func ttyWorkload() int {
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, unix.SIGWINCH)
	size := func() {
		ws, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ)
		if err != nil {
			fmt.Printf("size: %v\n", err)
			return
		}
		fmt.Printf("size %d %d\n", ws.Row, ws.Col)
	}
	size()
	fmt.Println("ready")
	select {
	case <-winch:
		size()
	case <-time.After(30 * time.Second):
		fmt.Println("no SIGWINCH")
	}
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	fmt.Printf("got %s (%v)\n", strings.TrimSpace(line), err)
	// More than the terminal buffers, for guestinit to drain after the
	// exit.
	os.Stdout.WriteString(ttyTail)
	return 3
}
