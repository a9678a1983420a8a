package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/vmm-dev/vmm/guestinit/protocol"
	"github.com/vmm-dev/vmm/internal/hostterm"
	"github.com/vmm-dev/vmm/vmm"
	"github.com/vmm-dev/vmm/vmm/container"
	"github.com/vmm-dev/vmm/vmm/doctor"
	"github.com/vmm-dev/vmm/vmm/msgbridge"
)

// Exit statuses of `vmm run` that are not the workload's, as docker run's.
const (
	statusRunFailed = 125 // vmm could not set up or finish the run
)

const runHelpTail = `IMAGE is a registry reference (alpine:3.20, ghcr.io/org/app@sha256:...),
oci-layout:DIR[:TAG] or docker-archive:FILE.tar; it is pulled into the local
store when it is not there. Every run gets a fresh writable layer over the
image's cached read-only disk and leaves nothing behind (--rm is implied).

The workload's stdout and stderr arrive here separately and byte for byte;
the kernel's console is kept apart (--console FILE saves it). Signals sent to
vmm (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2) are passed on to
the workload; a second SIGINT or SIGTERM stops the VM at once.

Exit status: the workload's (128+n when signal n killed it); 125 when vmm
could not run it (bad image, setup failure, the VM ended without a status);
2 for a bad command line.
`

type runOptions struct {
	rm, interactive, tty    bool
	env, envFiles           []string
	entrypoint              string
	workdir, user, hostname string
	cpus                    int
	memory, kernel, initrd  string
	compat, console         string
	seccomp                 string
	disks, nets, addHosts   []string
	agent                   string
}

func runFlags(stderr io.Writer) (*pflag.FlagSet, *runOptions) {
	o := &runOptions{}
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	// Everything after IMAGE is the workload's command line.
	fs.SetInterspersed(false)
	fs.BoolVar(&o.rm, "rm", true, "remove the run's state when it ends (always: runs keep none)")
	fs.BoolVarP(&o.interactive, "interactive", "i", false, "keep the workload's stdin open and feed it this process's stdin")
	fs.BoolVarP(&o.tty, "tty", "t", false, "give the workload a terminal (raw mode here when stdin is one)")
	fs.StringArrayVarP(&o.env, "env", "e", nil, "set `K=V` in the workload's environment; a bare K takes the host's value (repeatable)")
	fs.StringArrayVar(&o.envFiles, "env-file", nil, "read K=V lines from `FILE` (repeatable)")
	fs.StringVar(&o.entrypoint, "entrypoint", "", "replace the image's entrypoint with `PROGRAM` (\"\" for none)")
	fs.StringVarP(&o.workdir, "workdir", "w", "", "working `DIR` inside the image (absolute)")
	fs.StringVarP(&o.user, "user", "u", "", "run as `USER`: uid, uid:gid, name or name:group from the image")
	fs.StringVar(&o.hostname, "hostname", "", "the guest's host `NAME`")
	fs.IntVar(&o.cpus, "cpus", 1, "number of vCPUs")
	fs.StringVar(&o.memory, "memory", "512M", "guest RAM `size` (K, M, G suffixes)")
	fs.StringArrayVar(&o.disks, "disk", nil, "extra virtio-blk disk `PATH[,ro]` (repeatable; the image's own disk is /dev/vda)")
	fs.StringArrayVar(&o.nets, "net", nil, "virtio-net device, `SPEC` tap=NAME|socket=PATH[,mac=MAC][,ip=A.B.C.D/N][,gw=A.B.C.D]: on a TAP or on the L2 switch at PATH (vmm lab, vmtest); ip and gw configure the first one in the guest (repeatable)")
	fs.StringArrayVar(&o.addHosts, "add-host", nil, "add `NAME:IP` to the guest's /etc/hosts (repeatable; needs a --net)")
	fs.StringVar(&o.kernel, "kernel", "", "boot this `bzImage` instead of Debian's cloud kernel (its virtio, ext4 and overlayfs drivers built in)")
	fs.StringVar(&o.initrd, "initrd", "", "use this guestinit `initramfs` as the base the run's config is appended to")
	fs.StringVar(&o.compat, "compat", "auto", "compatibility `profile`: auto, software-kvm or off (see vmm help boot)")
	fs.StringVar(&o.seccomp, "seccomp", "on", seccompUsage)
	fs.StringVar(&o.console, "console", "", "save the guest's serial console (kernel messages) to `FILE`")
	fs.StringVar(&o.agent, "agent", "", "serve the guest agent (exec, file copies) on a unix SOCK_SEQPACKET socket vmm creates at `PATH` (package guestinit/agent's Dial)")
	return fs, o
}

func runRun(args []string, stdout, stderr io.Writer) int {
	fs, o := runFlags(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "vmm run: %v; run `vmm help run`\n", err)
		return vmm.StatusUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprintf(stderr, "vmm run: name an IMAGE, e.g. `vmm run alpine:3.20 echo hello`\n")
		return vmm.StatusUsage
	}
	spec, mach, err := o.resolve(fs, os.LookupEnv)
	if err != nil {
		fmt.Fprintf(stderr, "vmm run: %v\n", err)
		return vmm.StatusUsage
	}
	spec.Image, spec.Args = fs.Arg(0), fs.Args()[1:]
	if !mach.Seccomp {
		warnSeccompOff(stderr)
	}
	if err := checkHostMemory(mach.MemoryBytes); err != nil {
		fmt.Fprintf(stderr, "vmm run: %v\n", err)
		return statusRunFailed
	}
	if spec.TTY {
		spec.Terminal = terminalSize(os.Stdout)
	}
	ctx, stopPrep := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	p, err := container.Prepare(ctx, spec, mach, container.Options{Progress: stderr})
	stopPrep()
	if err != nil {
		fmt.Fprintf(stderr, "vmm run: %v\n", err)
		return statusRunFailed
	}
	defer p.Close()

	// Debian's kernel needs a host that runs Linux guests; a kernel the
	// user names is theirs to judge.
	if os.Getenv("VMM_TRACE_STARTUP") != "" {
		t := p.Timings
		fmt.Fprintf(stderr, "vmm: startup trace: prepared in %v: image %v, rootfs %v (cached %v), kernel and initramfs %v, run initramfs %v\n",
			time.Since(processStart).Round(time.Microsecond), t.Image.Round(time.Microsecond), t.Rootfs.Round(time.Microsecond),
			p.RootfsCached, t.Kernel.Round(time.Microsecond), t.Initramfs.Round(time.Microsecond))
	}
	if mach.Kernel == "" {
		if r := doctor.Check(doctor.LocalHost()); !r.LinuxGuests {
			fmt.Fprintf(stderr, "vmm run: prepared %s (%s): rootfs %s, kernel %s, initramfs %s and the run's config; "+
				"not starting it: this host cannot run Linux guests: %s (see `vmm doctor`)\n",
				p.Ref, container.ShortDigest(p.Digest), p.Rootfs, p.Kernel, p.BaseInitrd, r.LinuxGuestsReason)
			return statusRunFailed
		}
	}
	var extra []vmm.Port
	if o.agent != "" {
		b, err := msgbridge.Listen(o.agent, msgbridge.Options{Log: stderr})
		if err != nil {
			fmt.Fprintf(stderr, "vmm run: --agent: %v\n", err)
			return statusRunFailed
		}
		defer b.Close()
		extra = append(extra, vmm.Port{Name: protocol.PortAgent, In: b.In(), Out: b.Out()})
	}
	return startRun(p, spec, mach, o.console, stdout, stderr, extra...)
}

// startRun boots the prepared run with this process's stdio and returns
// the workload's exit status.
func startRun(p *container.Prepared, spec container.Spec, mach container.Machine, consolePath string, stdout, stderr io.Writer, extra ...vmm.Port) int {
	stdio := container.Stdio{Stdin: os.Stdin, Stdout: stdout, Stderr: stderr, Log: stderr}
	if consolePath != "" {
		f, err := os.Create(consolePath)
		if err != nil {
			fmt.Fprintf(stderr, "vmm run: --console: %v\n", err)
			return statusRunFailed
		}
		defer f.Close()
		stdio.Console = f
	}
	// With -t on a terminal, keys (Ctrl-C included) go to the workload's
	// terminal as they are, as docker run -it does.
	if spec.TTY && spec.Interactive && hostterm.IsTerminal(int(os.Stdin.Fd())) {
		restore, err := hostterm.MakeRaw(int(os.Stdin.Fd()))
		if err != nil {
			fmt.Fprintf(stderr, "vmm run: put the terminal in raw mode: %v\n", err)
			return statusRunFailed
		}
		defer restore()
	}
	run, err := container.Start(p, mach, stdio, extra...)
	if err != nil {
		fmt.Fprintf(stderr, "vmm run: %s\n", explain(err))
		return statusRunFailed
	}
	sigs := make(chan os.Signal, 8)
	forwarded := []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH}
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)
	go forwardSignals(run, sigs, stderr)

	status, err := run.Wait(context.Background())
	if os.Getenv("VMM_TRACE_STARTUP") != "" {
		traceRun(stderr, run)
	}
	if err != nil {
		fmt.Fprintf(stderr, "vmm run: %v\n", err)
		return statusRunFailed
	}
	return status
}

// processStart is when this process began, near enough: package
// initialisation runs before main.
var processStart = time.Now()

// traceRun prints when the guest started (VMM_TRACE_STARTUP=1).
func traceRun(w io.Writer, run *container.Run) {
	first := run.Machine.FirstRunTime()
	fmt.Fprintf(w, "vmm: startup trace: machine to first KVM_RUN %v; process start to first KVM_RUN %v\n",
		run.Startup().Round(time.Microsecond), first.Sub(processStart).Round(time.Microsecond))
}

// forwardSignals passes signals to the workload; a second SIGINT or
// SIGTERM stops the VM without waiting for the guest.
func forwardSignals(run *container.Run, sigs <-chan os.Signal, stderr io.Writer) {
	stops := 0
	for s := range sigs {
		sig := s.(syscall.Signal)
		if sig == syscall.SIGWINCH {
			if ts := terminalSize(os.Stdout); ts != nil {
				run.Channel.Resize(ts.Rows, ts.Cols)
			}
			continue
		}
		if sig == syscall.SIGINT || sig == syscall.SIGTERM {
			if stops++; stops > 1 {
				fmt.Fprintf(stderr, "vmm run: %v again: stopping the VM\n", sig)
				reason := vmm.ReasonInterrupted
				if sig == syscall.SIGTERM {
					reason = vmm.ReasonTerminated
				}
				run.Machine.Stop(reason, sig.String())
				continue
			}
		}
		if err := run.Channel.Signal(sig); err != nil {
			fmt.Fprintf(stderr, "vmm run: pass on %v: %v\n", sig, err)
		}
	}
}

// terminalSize is f's terminal size, or nil when f is not a terminal.
func terminalSize(f *os.File) *protocol.TerminalSize {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Row == 0 {
		return nil
	}
	return &protocol.TerminalSize{Rows: ws.Row, Cols: ws.Col}
}

// resolve turns the flags into the run's Spec and Machine; lookup is the
// host environment, for -e K and bare names in env files.
func (o *runOptions) resolve(fs *pflag.FlagSet, lookup func(string) (string, bool)) (container.Spec, container.Machine, error) {
	spec := container.Spec{
		WorkingDir: o.workdir, User: o.user, Hostname: o.hostname,
		TTY: o.tty, Interactive: o.interactive,
	}
	if fs.Changed("entrypoint") {
		ep := []string{}
		if o.entrypoint != "" {
			ep = []string{o.entrypoint}
		}
		spec.Entrypoint = &ep
	}
	// docker's order: every env file, then every -e.
	for _, name := range o.envFiles {
		f, err := os.Open(name)
		if err != nil {
			return spec, container.Machine{}, fmt.Errorf("--env-file: %w", err)
		}
		env, err := protocol.ParseEnvFile(f, lookup)
		f.Close()
		if err != nil {
			return spec, container.Machine{}, fmt.Errorf("--env-file %s: %w", name, err)
		}
		spec.Env = append(spec.Env, env...)
	}
	for _, e := range o.env {
		kv, err := protocol.EnvFlag(e, lookup)
		if err != nil {
			return spec, container.Machine{}, fmt.Errorf("-e %q: %w", e, err)
		}
		spec.Env = append(spec.Env, kv)
	}
	if o.workdir != "" && !strings.HasPrefix(o.workdir, "/") {
		return spec, container.Machine{}, fmt.Errorf("-w %q: the working directory needs to be an absolute path", o.workdir)
	}
	if o.cpus < 1 {
		return spec, container.Machine{}, fmt.Errorf("--cpus %d: want 1 or more", o.cpus)
	}
	mem, err := vmm.ParseSize(o.memory)
	if err != nil {
		return spec, container.Machine{}, fmt.Errorf("--memory: %w", err)
	}
	profile, err := compatProfile(o.compat)
	if err != nil {
		return spec, container.Machine{}, fmt.Errorf("--compat: %w", err)
	}
	disks, err := parseDisks(o.disks)
	if err != nil {
		return spec, container.Machine{}, fmt.Errorf("--disk: %w", err)
	}
	filter, err := seccompFlag(o.seccomp)
	if err != nil {
		return spec, container.Machine{}, err
	}
	m := container.Machine{CPUs: o.cpus, MemoryBytes: mem, Disks: disks, Kernel: o.kernel, Initrd: o.initrd, Profile: profile, Seccomp: filter}
	for i, v := range o.nets {
		nic, netcfg, err := parseRunNet(v)
		if err != nil {
			return spec, container.Machine{}, fmt.Errorf("--net: %w", err)
		}
		if netcfg != nil {
			if i > 0 {
				return spec, container.Machine{}, fmt.Errorf("--net %q: ip= and gw= configure the first --net only", v)
			}
			spec.Network = netcfg
		}
		m.NICs = append(m.NICs, nic)
	}
	if len(o.addHosts) > 0 {
		if len(m.NICs) == 0 {
			return spec, container.Machine{}, fmt.Errorf("--add-host names hosts on a network: give a --net too")
		}
		if spec.Network == nil {
			spec.Network = &protocol.NetworkConfig{}
		}
		for _, h := range o.addHosts {
			name, addr, ok := strings.Cut(h, ":")
			a, err := netip.ParseAddr(addr)
			if !ok || name == "" || err != nil {
				return spec, container.Machine{}, fmt.Errorf("--add-host %q: want NAME:IP, e.g. db:10.0.2.20", h)
			}
			spec.Network.ExtraHosts = append(spec.Network.ExtraHosts, protocol.HostEntry{Name: name, Addr: a})
		}
	}
	return spec, m, nil
}

// parseRunNet reads one --net value of vmm run: vmm boot's TAP options
// plus ip= and gw=, which guestinit sets on the guest's interface.
func parseRunNet(v string) (vmm.NIC, *protocol.NetworkConfig, error) {
	var keep []string
	var cfg protocol.NetworkConfig
	var set bool
	for _, kv := range strings.Split(v, ",") {
		key, val, _ := strings.Cut(kv, "=")
		switch key {
		case "ip":
			p, err := netip.ParsePrefix(val)
			if err != nil || !p.Addr().Is4() {
				return vmm.NIC{}, nil, fmt.Errorf("%q: ip=%q: want an IPv4 address with its prefix length, e.g. 10.0.2.15/24", v, val)
			}
			cfg.Addr, set = p, true
		case "gw":
			a, err := netip.ParseAddr(val)
			if err != nil || !a.Is4() {
				return vmm.NIC{}, nil, fmt.Errorf("%q: gw=%q: want an IPv4 address, e.g. 10.0.2.2", v, val)
			}
			cfg.Gateway, set = a, true
		default:
			keep = append(keep, kv)
		}
	}
	nic, err := vmm.ParseNIC(strings.Join(keep, ","))
	if err != nil {
		return vmm.NIC{}, nil, err
	}
	if !set {
		return nic, nil, nil
	}
	if !cfg.Addr.IsValid() {
		return vmm.NIC{}, nil, fmt.Errorf("%q: gw= needs ip= too", v)
	}
	return nic, &cfg, nil
}
