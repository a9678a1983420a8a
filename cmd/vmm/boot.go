package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/vmm-dev/vmm/boot"
	"github.com/vmm-dev/vmm/internal/startuptrace"
	"github.com/vmm-dev/vmm/kvm"
	"github.com/vmm-dev/vmm/vmm"
	"github.com/vmm-dev/vmm/vmm/container"
	"github.com/vmm-dev/vmm/vmm/doctor"
	"github.com/vmm-dev/vmm/vmm/msgbridge"
)

const bootHelpTail = `The guest's serial console (COM1) is this process's stdin and stdout.
When stdin is a terminal it is put in raw mode; press Ctrl-A then x to stop
the VM, Ctrl-A then h for help.

Exit status: 0 when the guest powers off or resets; 1 when the VM could not
be set up; 2 for a bad command line; 3 guest triple fault; 4 KVM internal
error (e.g. an instruction KVM cannot emulate); 5 KVM could not enter the
guest; 6 VMM error while running; 7 guest kernel panic ("Kernel panic - not
syncing" on the console, then a reset); 130/143 stopped by SIGINT/SIGTERM.
After a crash or a panic the console's last lines are repeated on stderr.

SIGINT stops the VM at once. SIGTERM presses the ACPI power button: a guest
that handles it shuts down and powers off (status 0); one that does not is
stopped after --stop-timeout (143), or at once on a second SIGTERM.
`

type bootOptions struct {
	kernel, initrd, cmdline, memory string
	cpus                            int
	compat                          string
	disks                           []string
	nets                            []string
	ports                           []string
	rng                             bool
	seccomp                         string
	stopTimeout                     time.Duration
}

func bootFlags(stderr io.Writer) (*pflag.FlagSet, *bootOptions) {
	o := &bootOptions{}
	fs := pflag.NewFlagSet("boot", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.kernel, "kernel", "", "Linux kernel `bzImage` to boot (required)")
	fs.StringVar(&o.initrd, "initrd", "", "initial ramdisk `file` (e.g. a cpio initramfs)")
	fs.StringVar(&o.cmdline, "cmdline", "console=ttyS0", "kernel command `line`")
	fs.StringVar(&o.memory, "memory", "512M", "guest RAM `size` (K, M, G suffixes)")
	fs.IntVar(&o.cpus, "cpus", 1, "number of vCPUs")
	fs.StringArrayVar(&o.disks, "disk", nil, "virtio-blk disk `PATH[,ro]` backed by a file (repeatable; the first is /dev/vda)")
	fs.StringArrayVar(&o.ports, "port", nil, "named virtio-console port: `NAME[,out=FILE][,in=FILE]` (what the guest writes goes to FILE, created; the guest reads in=FILE) or NAME,socket=PATH (agent frames, one per message, on a unix SOCK_SEQPACKET socket vmm creates at PATH: the guest agent's vmm.agent port) (repeatable)")
	fs.StringArrayVar(&o.nets, "net", nil, "virtio-net device: `tap=NAME|socket=PATH[,mac=MAC]`, on a TAP interface (created if missing) or on the L2 switch listening at the unix socket PATH (repeatable; the first is eth0)")
	fs.BoolVar(&o.rng, "rng", true, "add a virtio-rng device fed by the host's getrandom")
	fs.StringVar(&o.seccomp, "seccomp", "on", seccompUsage)
	fs.DurationVar(&o.stopTimeout, "stop-timeout", 10*time.Second, "on SIGTERM, press the ACPI power button and wait this `long` for the guest to power off before stopping it")
	fs.StringVar(&o.compat, "compat", "auto", "compatibility `profile`: auto (software-kvm on a software-only KVM host), software-kvm, or off; see docs/software-kvm.md")
	return fs, o
}

func runBoot(args []string, stdout, stderr io.Writer) int {
	fs, o := bootFlags(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "vmm boot: %v; run `vmm help boot`\n", err)
		return vmm.StatusUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vmm boot: unexpected argument %q; run `vmm help boot`\n", fs.Arg(0))
		return vmm.StatusUsage
	}
	if o.kernel == "" {
		fmt.Fprintf(stderr, "vmm boot: --kernel is required: name a bzImage such as /boot/vmlinuz-$(uname -r)\n")
		return vmm.StatusUsage
	}
	mem, err := vmm.ParseSize(o.memory)
	if err != nil {
		fmt.Fprintf(stderr, "vmm boot: --memory: %v\n", err)
		return vmm.StatusUsage
	}
	if err := checkHostMemory(mem); err != nil {
		fmt.Fprintf(stderr, "vmm: %v\n", err)
		return vmm.StatusSetupError
	}

	profile, err := compatProfile(o.compat)
	if err != nil {
		fmt.Fprintf(stderr, "vmm boot: --compat: %v\n", err)
		return vmm.StatusUsage
	}
	disks, err := parseDisks(o.disks)
	if err != nil {
		fmt.Fprintf(stderr, "vmm boot: --disk: %v\n", err)
		return vmm.StatusUsage
	}
	var nics []vmm.NIC
	for _, spec := range o.nets {
		n, err := vmm.ParseNIC(spec)
		if err != nil {
			fmt.Fprintf(stderr, "vmm boot: --net: %v\n", err)
			return vmm.StatusUsage
		}
		nics = append(nics, n)
	}
	ports, closePorts, err := openPorts(o.ports, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "vmm boot: --port: %v\n", err)
		return vmm.StatusUsage
	}
	defer closePorts()
	filter, err := seccompFlag(o.seccomp)
	if err != nil {
		fmt.Fprintf(stderr, "vmm boot: %v\n", err)
		return vmm.StatusUsage
	}
	if !filter {
		warnSeccompOff(stderr)
	}
	cfg := vmm.Config{
		Seccomp: filter,
		Kernel:  o.kernel, Initrd: o.initrd, Cmdline: o.cmdline,
		MemoryBytes: mem, CPUs: o.cpus, Console: stdout,
		Profile: profile, Vmlinux: container.HostVmlinux,
		Disks: disks, NICs: nics, Ports: ports, RNG: o.rng, Log: stderr,
	}
	con, err := openConsole(os.Stdin, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "vmm: console: %v\n", err)
		return vmm.StatusSetupError
	}
	defer con.restore()
	cfg.ConsoleIn = con

	// The stop signals are subscribed to while New waits for KVM: the
	// first signal.Notify starts the runtime's signal thread and waits for
	// it. One that arrives before the machine exists waits in sigs.
	sigs := make(chan os.Signal, 2)
	cfg.WhileKVMSetup = func() { signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM) }
	defer signal.Stop(sigs)
	startuptrace.Mark("flags")
	m, err := vmm.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "vmm: %s\n", explain(err))
		return vmm.StatusSetupError
	}
	defer m.Close()
	con.onQuit = func() { m.Stop(vmm.ReasonInterrupted, "console escape Ctrl-A x") }

	go stopOnSignals(m, sigs, o.stopTimeout, stderr)

	if every, err := time.ParseDuration(os.Getenv("VMM_SAMPLE_RIP")); err == nil && every > 0 {
		go sampleRIP(m, every, stderr)
	}
	out := m.Run(context.Background())
	con.restore()
	fmt.Fprintf(stderr, "\nvmm: %s; unhandled accesses: pio=%d mmio=%d%s\n", out, out.Unhandled.PIO, out.Unhandled.MMIO, emulatedSummary(out.Emulated))
	if out.Crashed() && out.ConsoleTail != "" {
		fmt.Fprintf(stderr, "vmm: the guest's console ended with:\n%s\n", out.ConsoleTail)
	}
	if os.Getenv("VMM_TRACE_STARTUP") != "" {
		startuptrace.Print(stderr)
	}
	if os.Getenv("VMM_TRACE_MEMORY") != "" {
		traceMemory(stderr)
	}
	if os.Getenv("VMM_TRACE_EXITS") != "" {
		fmt.Fprintf(stderr, "vmm: exits by reason: %v\n", m.ExitCounts())
	}
	return out.Reason.Status()
}

// checkHostMemory refuses guests bigger than the host's RAM: guest memory
// is mapped lazily, but a guest that uses it all would be killed by the OOM
// killer midway instead of failing here.
func checkHostMemory(want uint64) error {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return nil // cannot tell; let the mapping decide
	}
	total := uint64(si.Totalram) * uint64(si.Unit)
	if want > total {
		return fmt.Errorf("--memory %s is more than this host's %s of RAM: give a smaller size",
			vmm.FormatSize(want), vmm.FormatSize(total&^(1<<20-1)))
	}
	return nil
}

// explain turns a setup error into one line a person can act on.
func explain(err error) string {
	var fe *vmm.FileError
	switch {
	case errors.Is(err, kvm.ErrNoKVM):
		return err.Error()
	case errors.As(err, &fe) && errors.Is(err, os.ErrNotExist):
		return fmt.Sprintf("%s %s does not exist: check the path", fe.Role, fe.Path)
	case errors.As(err, &fe) && errors.Is(err, os.ErrPermission):
		return fmt.Sprintf("cannot read %s %s: permission denied", fe.Role, fe.Path)
	case errors.Is(err, boot.ErrNotBzImage):
		return err.Error()
	}
	return err.Error()
}

// traceMemory prints the Go runtime's own memory at the end of a run, for
// the benchmark's VMM-overhead figures (bench/memory.go): all it has mapped,
// what of that it has given back to the kernel, and live heap objects.
// ReadMemStats rather than runtime/metrics, whose package initialisation
// alone costs a fifth of a millisecond of every start.
func traceMemory(w io.Writer) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(w, "vmm: memory trace: go_total=%d go_released=%d go_heap_objects=%d\n",
		ms.Sys, ms.HeapReleased, ms.HeapAlloc)
}

// compatProfile resolves --compat.
func compatProfile(name string) (vmm.Profile, error) {
	switch name {
	case "auto":
		if doctor.SoftwareKVM() {
			return vmm.SoftwareKVMProfile(), nil
		}
		return vmm.Profile{}, nil
	case "software-kvm":
		return vmm.SoftwareKVMProfile(), nil
	case "off", "none":
		return vmm.Profile{}, nil
	}
	return vmm.Profile{}, fmt.Errorf("unknown profile %q: use auto, software-kvm or off", name)
}

// emulatedSummary lists what the fallback emulator did, e.g. "; emulated: int3=1 iretq=1".
func emulatedSummary(counts map[string]uint64) string {
	if len(counts) == 0 {
		return ""
	}
	names := slices.Sorted(maps.Keys(counts))
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s=%d", n, counts[n])
	}
	return "; emulated: " + strings.Join(parts, " ")
}

// sampleRIP prints where the boot vCPU is every interval (VMM_SAMPLE_RIP=2s):
// a poor man's profiler for guests that are slow or stuck.
func sampleRIP(m *vmm.Machine, every time.Duration, w io.Writer) {
	for range time.Tick(every) {
		r, ok := m.Sample()
		if !ok {
			continue
		}
		fmt.Fprintf(w, "vmm: sample rip=%#x rsp=%#x rax=%#x rcx=%#x rflags=%#x\n", r.RIP, r.RSP, r.RAX, r.RCX, r.RFLAGS)
	}
}

// parseDisks reads --disk values: PATH or PATH,ro.
func parseDisks(specs []string) ([]vmm.Disk, error) {
	var disks []vmm.Disk
	for _, spec := range specs {
		path, opts, _ := strings.Cut(spec, ",")
		if path == "" {
			return nil, fmt.Errorf("%q names no file: use PATH or PATH,ro", spec)
		}
		d := vmm.Disk{Path: path}
		for _, o := range strings.Split(opts, ",") {
			switch o {
			case "":
			case "ro":
				d.ReadOnly = true
			default:
				return nil, fmt.Errorf("%q: unknown option %q: use PATH or PATH,ro", spec, o)
			}
		}
		disks = append(disks, d)
	}
	return disks, nil
}

// openPorts reads --port values, NAME[,out=FILE][,in=FILE] or
// NAME,socket=PATH, and opens their files and sockets; the returned
// function closes them after the run, removing the sockets. Bridge
// warnings go to log.
func openPorts(specs []string, log io.Writer) ([]vmm.Port, func(), error) {
	var ports []vmm.Port
	var closers []io.Closer
	closeAll := func() {
		for _, c := range closers {
			c.Close()
		}
	}
	const usage = "use NAME[,out=FILE][,in=FILE] or NAME,socket=PATH"
	for _, spec := range specs {
		name, opts, _ := strings.Cut(spec, ",")
		if name == "" {
			closeAll()
			return nil, nil, fmt.Errorf("%q names no port: %s", spec, usage)
		}
		p := vmm.Port{Name: name}
		var socket string
		for _, o := range strings.Split(opts, ",") {
			key, file, _ := strings.Cut(o, "=")
			var f *os.File
			var err error
			switch {
			case o == "":
				continue
			case key == "out" && file != "":
				f, err = os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
				p.Out = f
			case key == "in" && file != "":
				f, err = os.Open(file)
				p.In = f
			case key == "socket" && file != "" && socket == "":
				socket = file
				continue
			default:
				closeAll()
				return nil, nil, fmt.Errorf("%q: unknown option %q: %s", spec, o, usage)
			}
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("port %s: %w", name, err)
			}
			closers = append(closers, f)
		}
		if socket != "" {
			if p.In != nil || p.Out != nil {
				closeAll()
				return nil, nil, fmt.Errorf("%q: socket= carries both directions: it goes without in= and out=", spec)
			}
			b, err := msgbridge.Listen(socket, msgbridge.Options{Log: log})
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("port %s: %w", name, err)
			}
			closers = append(closers, b)
			p.In, p.Out = b.In(), b.Out()
		}
		ports = append(ports, p)
	}
	return ports, closeAll, nil
}

const seccompUsage = "system-call filter once the VM runs: on, or off (for debugging only: the VMM then runs unconfined)"

// seccompFlag reads --seccomp.
func seccompFlag(v string) (bool, error) {
	switch v {
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	return false, fmt.Errorf("--seccomp %q: use on or off", v)
}

// warnSeccompOff says loudly, every time, that the filter is off.
func warnSeccompOff(stderr io.Writer) {
	fmt.Fprintln(stderr, "vmm: WARNING: --seccomp=off: the VMM runs without its system-call filter; a guest that compromised a device could make any system call vmm's user can. Use it for debugging only.")
}

// stopOnSignals ends the run on signals: SIGINT stops the VM at once;
// SIGTERM asks the guest to shut down (the ACPI power button) and stops
// it after timeout, or at once on a second SIGTERM.
func stopOnSignals(m *vmm.Machine, sigs <-chan os.Signal, timeout time.Duration, stderr io.Writer) {
	var hard <-chan time.Time
	asked := false
	for {
		select {
		case s, ok := <-sigs:
			if !ok {
				return
			}
			if s != syscall.SIGTERM {
				m.Stop(vmm.ReasonInterrupted, "SIGINT")
				continue
			}
			if asked || timeout <= 0 {
				m.Stop(vmm.ReasonTerminated, "")
				continue
			}
			asked = true
			fmt.Fprintf(stderr, "\nvmm: SIGTERM: pressing the ACPI power button; the VM stops in %v unless the guest powers off first (SIGTERM again stops it now)\n", timeout)
			m.PressPowerButton()
			hard = time.After(timeout)
		case <-hard:
			m.Stop(vmm.ReasonTerminated, fmt.Sprintf("the guest did not power off within %v of the power button", timeout))
		}
	}
}
