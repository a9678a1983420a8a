package guestinit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vmm-dev/vmm/guestinit/protocol"
	"github.com/vmm-dev/vmm/guestinit/workload"
	"golang.org/x/sys/unix"
)

// Run mode: when the host put a run config in the initramfs, guestinit
// runs the container workload it describes, as `docker run` would, and
// reports its exit status on the control port before powering off.

// RunOps are the actions run mode takes on the machine. Starting and
// supervising the workload is not among them: tests run the real thing,
// as PID 1 of a PID namespace of their own.
type RunOps struct {
	// ReadConfig returns the encoded run config.
	ReadConfig func() ([]byte, error)
	// Ports lists the virtio-console ports there are now, by name, with
	// their device nodes (FindPorts).
	Ports func() (map[string]string, error)
	// OpenPort opens a port's device node with open(2) flags.
	OpenPort func(path string, flag int) (*os.File, error)
	// Stat returns nil once the file at path exists.
	Stat     func(path string) error
	Mount    func(Mount) error
	MkdirAll func(dir string) error
	// SetHostname sets the machine's host name.
	SetHostname func(name string) error
	// Network brings loopback up, and the guest's interface when n is not
	// nil.
	Network  func(n *protocol.NetworkConfig) error
	PowerOff func() error
}

// LinuxRunOps returns the real RunOps.
func LinuxRunOps() RunOps {
	return RunOps{
		ReadConfig:  func() ([]byte, error) { return os.ReadFile(protocol.RunConfigPath) },
		Ports:       func() (map[string]string, error) { return FindPorts(os.DirFS("/sys")) },
		OpenPort:    openPort,
		Stat:        func(path string) error { _, err := os.Stat(path); return err },
		Mount:       mount,
		MkdirAll:    func(dir string) error { return os.MkdirAll(dir, 0o755) },
		SetHostname: func(name string) error { return unix.Sethostname([]byte(name)) },
		Network:     configureNetwork,
		PowerOff:    powerOff,
	}
}

// RunDeviceWait bounds how long run mode waits for the image disk and the
// ports: their drivers probe them after the modules load, which takes
// seconds under an emulator such as QEMU's TCG.
const RunDeviceWait = 20 * time.Second

// Runner runs one container workload.
type Runner struct {
	Ops RunOps
	// Console is the serial console, where guestinit's own messages go;
	// the workload's output has ports of its own.
	Console io.Writer
	mu      sync.Mutex // serializes writes to Console, which two goroutines make
	// Root is where the workload's root filesystem is assembled: RunRoot.
	Root string
	// DeviceWait bounds the wait for the image disk and the ports.
	DeviceWait time.Duration
}

// NewRunner returns the Runner of a real guest.
func NewRunner(console io.Writer) *Runner {
	return &Runner{Ops: LinuxRunOps(), Console: console, Root: RunRoot, DeviceWait: RunDeviceWait}
}

// Run runs the workload, reports its exit status on the control port and
// powers off. Anything that stops the workload from starting is reported
// on the stderr port (and the console) with docker's status for it: 127 or
// 126 when the program is missing or cannot run, 125 otherwise. Run
// returns only when power-off fails: PID 1 must not exit.
func (r *Runner) Run() error {
	cfg, err := r.readConfig()
	// Without a config it is not known whether there is a stdin port, but
	// the others can still carry the error and the status.
	ports, portsErr := r.openPorts(needPorts(cfg, err == nil))
	status := workload.StatusRunFailed
	if err = errors.Join(err, portsErr); err == nil {
		status, err = r.runWorkload(cfg, ports)
	}
	if err != nil {
		r.reportSetupError(ports, err)
	}
	r.reportExit(ports, status)
	if err := r.Ops.PowerOff(); err != nil {
		return fmt.Errorf("power off: %w", err)
	}
	return nil
}

func (r *Runner) readConfig() (protocol.RunConfig, error) {
	data, err := r.Ops.ReadConfig()
	if err != nil {
		return protocol.RunConfig{}, fmt.Errorf("read the run config: %w", err)
	}
	return protocol.DecodeRunConfig(data)
}

// runWorkload prepares the machine for cfg and runs the workload. The
// error is for failures before the workload started; later ones go to the
// console.
func (r *Runner) runWorkload(cfg protocol.RunConfig, ports *runPorts) (int, error) {
	if err := r.setup(cfg); err != nil {
		return workload.StatusRunFailed, err
	}
	spec, err := workload.Resolve(cfg, workload.RootFS(r.Root))
	if err != nil {
		return workload.StatusRunFailed, err
	}
	stdio, term, err := r.stdio(cfg, ports)
	if err != nil {
		return workload.StatusRunFailed, err
	}
	// The host's messages are read from here on: a signal that comes
	// before the workload starts waits in the channel until it runs.
	signals := make(chan os.Signal, 16)
	go serveControl(ports.control, r.logf, signals, term.resize)
	// The agent's programs are children too: Supervise reaps for them.
	children := workload.NewChildren()
	// The working directory exists before the agent can run anything in
	// it, not only once the workload starts.
	if err := workload.MakeWorkdir(r.Root, spec); err != nil {
		return workload.StatusRunFailed, err
	}
	r.startAgent(spec, children)
	status, err := workload.Supervise(spec, stdio, workload.Options{Chroot: r.Root, KillOthers: true, Signals: signals, Children: children})
	if term != nil {
		if err := term.drain(terminalDrainWait); err != nil {
			r.logf("%v", err)
		}
	}
	if err != nil {
		if started(err) {
			r.logf("%v", err)
			return status, nil
		}
		return status, err
	}
	return status, nil
}

// stdio connects the workload to the ports. Without -t the ports are its
// stdout and stderr themselves, so its output reaches the host unchanged,
// and with -i the stdin port is its stdin; without -i stdin is /dev/null.
// With -t they are a new terminal, which guestinit connects to the ports.
func (r *Runner) stdio(cfg protocol.RunConfig, ports *runPorts) (workload.Stdio, *terminal, error) {
	if !cfg.TTY {
		stdio := workload.Stdio{Stdout: ports.stdout, Stderr: ports.stderr}
		if cfg.Interactive {
			stdio.Stdin = ports.stdin
		}
		return stdio, nil, nil
	}
	term, err := openTerminal(filepath.Join(r.Root, "dev/pts"), cfg.Terminal)
	if err != nil {
		return workload.Stdio{}, nil, err
	}
	var in io.Reader
	if cfg.Interactive && ports.stdin != nil {
		in = ports.stdin
	}
	term.copy(in, ports.stdout)
	return term.stdio(), term, nil
}

// started tells whether the workload ran before Supervise failed.
func started(err error) bool {
	var se *workload.StartError
	return !errors.As(err, &se) && !errors.Is(err, workload.ErrNotPID1)
}

// setup mounts the workload's root and gives the machine the run's
// identity and network.
func (r *Runner) setup(cfg protocol.RunConfig) error {
	if err := r.waitDisk(protocol.RootfsDevice); err != nil {
		return err
	}
	if err := r.mountRoot(protocol.RootfsDevice); err != nil {
		return err
	}
	hostname := cfg.Hostname
	if hostname == "" {
		hostname = protocol.DefaultHostname
	}
	if err := r.Ops.SetHostname(hostname); err != nil {
		return fmt.Errorf("set the host name %s: %w", hostname, err)
	}
	if err := writeEtcFiles(r.Root, hostname, cfg.Network); err != nil {
		return err
	}
	if err := r.Ops.Network(cfg.Network); err != nil {
		return fmt.Errorf("network: %w", err)
	}
	return nil
}

// waitDisk waits for the image disk's device node, which devtmpfs creates
// once virtio_blk has probed the disk.
func (r *Runner) waitDisk(dev string) error {
	if err := waitFor(r.DeviceWait, func() error { return r.Ops.Stat(dev) }); err != nil {
		return fmt.Errorf("the image disk %s did not appear within %v: %w", dev, r.DeviceWait, err)
	}
	return nil
}

// mountRoot mounts the image disk under a writable overlay and, inside
// it, the filesystems a container expects.
func (r *Runner) mountRoot(dev string) error {
	rootfs := RootfsMounts(dev)
	lower, overlay := rootfs[:len(rootfs)-1], rootfs[len(rootfs)-1]
	for _, m := range lower {
		if err := r.Ops.Mount(m); err != nil {
			return fmt.Errorf("mount %s: %w", m, err)
		}
	}
	for _, dir := range OverlayDirs() {
		if err := r.Ops.MkdirAll(dir); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
	}
	for _, m := range append([]Mount{overlay}, WorkloadMounts(r.Root)...) {
		if err := r.Ops.Mount(m); err != nil {
			return fmt.Errorf("mount %s: %w", m, err)
		}
	}
	return nil
}

// reportSetupError tells the user why the workload did not run: on the
// stderr port, where `vmm run` shows it as the workload's own error, and
// on the console for the machine's log.
func (r *Runner) reportSetupError(ports *runPorts, err error) {
	r.logf("%v", err)
	if ports.stderr != nil {
		fmt.Fprintf(ports.stderr, "guestinit: %v\n", err)
	}
}

// reportExit ends the output streams and sends the exit status. The
// streams are closed first so the host has every byte of them when the
// status comes.
func (r *Runner) reportExit(ports *runPorts, status int) {
	ports.closeOutput()
	if ports.control == nil {
		r.logf("no control port to report exit status %d on", status)
		return
	}
	if err := protocol.WriteControl(ports.control, protocol.ExitMessage(status)); err != nil {
		r.logf("report exit status %d: %v", status, err)
	}
}

// logf prints one of guestinit's own messages on the console.
func (r *Runner) logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.Console, "guestinit: "+format+"\n", args...)
}
