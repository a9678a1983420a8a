// Package vmm assembles a virtual machine from a Config: guest memory, the
// Linux boot state, vCPU threads, the port-I/O and MMIO buses with their
// devices, and the lifecycle that ends in an Outcome.
package vmm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmm-dev/vmm/boot"
	"github.com/vmm-dev/vmm/devices"
	"github.com/vmm-dev/vmm/devices/acpi"
	"github.com/vmm-dev/vmm/devices/pci"
	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/internal/startuptrace"
	"github.com/vmm-dev/vmm/kvm"
	"github.com/vmm-dev/vmm/vmm/seccomp"
)

// Fixed guest-physical addresses outside RAM that Intel VMX needs for
// real-mode support (three pages of TSS and one identity-map page), placed
// in the MMIO hole below the IOAPIC as other VMMs do.
const (
	tssAddr         = 0xFFFB_D000
	identityMapAddr = 0xFFFB_C000
)

// Legacy port-I/O placement.
const (
	com1Base     = 0x3F8
	com1Size     = 8
	com1IRQ      = 4
	i8042Data    = 0x60
	i8042Command = 0x64
)

// serialFlushDelay bounds how long console output may sit in the UART's
// buffer before it reaches the host.
const serialFlushDelay = 5 * time.Millisecond

// Machine is one virtual machine. Build it with New, run it once with Run,
// and Close it.
type Machine struct {
	cfg    Config
	sys    *kvm.System
	vm     *kvm.VM
	mem    *guestmem.Memory
	vcpus  []*kvm.VCPU
	serial *devices.Serial
	tail   *consoleTail // the console's end, for Outcome
	pm     *acpi.PM
	pci    *pci.Bus
	bars   *pci.BARAllocator
	msi    *msiRouter // MSI-X messages through GSI routes and irqfds
	intx   *intxLines // PCI INTx, when a function's MSI-X is off

	virtio     []*virtioDevice
	virtioWG   sync.WaitGroup // the queue goroutines
	virtioStop atomic.Bool
	exits      *exitHandler
	undo       cleanup

	emulated emulatedCounts // instructions the fallback emulator performed

	tids []atomic.Int32 // OS thread of each running vCPU, for kicks

	mu       sync.Mutex // guards outcome
	outcome  Outcome
	stopping atomic.Bool

	kickMu sync.Mutex // serialises kicks with Close, which unmaps kvm_run
	closed bool       // guarded by kickMu

	firstRun     sync.Once
	firstRunTime time.Time // when the boot vCPU first entered KVM_RUN

	// confined is closed once the VMM may act on what the guest does: the
	// seccomp filter is in (when the Config asks for it) and the queue
	// goroutines serve. Until then each vCPU holds its first exit.
	confined chan struct{}

	sampleReq atomic.Bool   // a Sample is waiting for the boot vCPU
	samples   chan kvm.Regs // where the boot vCPU answers it
}

// FirstRunTime reports when the boot vCPU first entered the guest: the end
// of the VMM's start-up, for measurements.
func (m *Machine) FirstRunTime() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.firstRunTime
}

// New builds a Machine: it opens KVM, maps memory, loads the kernel and
// initrd, creates the vCPUs and attaches the devices. On failure it releases
// everything it had opened.
func New(cfg Config) (_ *Machine, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Console == nil {
		cfg.Console = io.Discard
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	m := &Machine{cfg: cfg, samples: make(chan kvm.Regs, 1), confined: make(chan struct{})}
	defer func() {
		if err != nil {
			m.undo.run()
		}
	}()
	if m.sys, err = kvm.Open(); err != nil {
		return nil, err
	}
	startuptrace.Mark("kvm-open")
	m.undo.add(m.sys.Close)
	// KVM's half of the set-up runs beside the VMM's own (see vmsetup.go).
	// From here every path calls setup.wait before returning.
	setup := m.startVMSetup()
	err = m.createVM()
	setup.proceed(err == nil)
	var entry *boot.EntryState
	if err == nil {
		entry, err = m.loadKernel()
	}
	if err == nil {
		startuptrace.Mark("load-kernel")
		err = m.setupDevices()
	}
	if err == nil {
		startuptrace.Mark("devices")
		err = m.setupACPI()
	}
	if err == nil {
		startuptrace.Mark("acpi")
		if m.cfg.WhileKVMSetup != nil {
			m.cfg.WhileKVMSetup()
		}
	}
	if verr := setup.wait(m); err == nil {
		err = verr
	}
	if err != nil {
		return nil, err
	}
	startuptrace.Mark("vm-ready")
	m.tids = make([]atomic.Int32, m.cfg.CPUs)
	if err := m.addConfiguredVirtio(); err != nil {
		return nil, err
	}
	startuptrace.Mark("virtio")
	if err := setEntryState(m.vcpus[0], entry); err != nil {
		return nil, fmt.Errorf("set up vCPU 0: %w", err)
	}
	startuptrace.Mark("vcpus")
	return m, nil
}

// createVM creates the VM and maps the guest's RAM, which the KVM half of
// set-up registers.
func (m *Machine) createVM() (err error) {
	if m.vm, err = m.sys.CreateVM(); err != nil {
		return err
	}
	startuptrace.Mark("create-vm")
	m.undo.add(m.vm.Close)
	if err := checkVCPULimit(m.cfg.CPUs, m.vm.CheckExtension(kvm.KVM_CAP_MAX_VCPUS)); err != nil {
		return err
	}
	layout, err := guestmem.X86Layout(m.cfg.MemoryBytes)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if m.mem, err = guestmem.New(layout); err != nil {
		return err
	}
	m.undo.add(m.mem.Close)
	startuptrace.Mark("memory")
	return nil
}

// FileError names a file the user gave that could not be used.
type FileError struct {
	Role string // "kernel", "initrd"
	Path string
	Err  error
}

func (e *FileError) Error() string { return fmt.Sprintf("%s %s: %v", e.Role, e.Path, e.Err) }
func (e *FileError) Unwrap() error { return e.Err }

func openSized(role, path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, &FileError{Role: role, Path: path, Err: err}
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, &FileError{Role: role, Path: path, Err: err}
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, &FileError{Role: role, Path: path, Err: errors.New("not a regular file")}
	}
	return f, st.Size(), nil
}

func (m *Machine) loadKernel() (*boot.EntryState, error) {
	k, ksize, err := openSized("kernel", m.cfg.Kernel)
	if err != nil {
		return nil, err
	}
	defer k.Close()
	bc := boot.Config{
		Kernel: k, KernelSize: ksize,
		Cmdline: m.cfg.Profile.AppendCmdline(m.cfg.Cmdline),
	}
	if m.cfg.Profile.HostDecompress && m.cfg.Vmlinux != nil {
		v, release, err := m.cfg.Vmlinux(m.cfg.Kernel)
		switch {
		case err == nil:
			defer release()
			bc.Vmlinux = v
		case errors.Is(err, boot.ErrUnsupportedCompression) || errors.Is(err, boot.ErrNoPayload):
			// Not a payload the host can unpack (or not compressed at
			// all, as with micro-guests): let the kernel's own
			// decompressor run.
		case errors.Is(err, ErrHostDecompressUnavailable):
			fmt.Fprintf(m.cfg.Log, "vmm: warning: %v; the guest decompresses its kernel itself, which is slower\n", err)
		default:
			return nil, fmt.Errorf("load kernel %s: %w", m.cfg.Kernel, err)
		}
	}
	if m.cfg.Initrd != "" {
		f, size, err := openSized("initrd", m.cfg.Initrd)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		bc.Initrd, bc.InitrdSize = f, size
	}
	entry, err := boot.Load(m.mem, bc)
	if err != nil {
		return nil, fmt.Errorf("load kernel %s: %w", m.cfg.Kernel, err)
	}
	return entry, nil
}

// irqLine drives one input pin of the in-kernel PIC/IOAPIC.
type irqLine struct {
	vm  *kvm.VM
	irq uint32
}

func (l irqLine) SetLevel(high bool) error { return l.vm.IRQLine(l.irq, high) }

func (m *Machine) setupDevices() error {
	m.exits = &exitHandler{pio: NewBus("pio"), mmio: NewBus("mmio")}
	m.tail = &consoleTail{}
	var console io.Writer = m.tail
	if m.cfg.Console != nil {
		console = io.MultiWriter(m.tail, m.cfg.Console)
	}
	m.serial = devices.NewSerial(irqLine{m.vm, com1IRQ}, console,
		devices.WithFlushDelay(serialFlushDelay, afterFunc))
	kbd := devices.NewI8042(func() { m.Stop(ReasonReset, "i8042 reset command") })
	pio := []PIODevice{
		{Name: "com1", Base: com1Base, Size: com1Size, Dev: m.serial},
		{Name: "i8042-data", Base: i8042Data, Size: 1, Dev: kbd.DataPort()},
		{Name: "i8042-command", Base: i8042Command, Size: 1, Dev: kbd.CommandPort()},
	}
	// The PCI host bridge; devices join the bus as they are added.
	m.pci = pci.NewBus()
	bars, err := pci.NewBARAllocator(pciBARWindowStart, pciBARWindowEnd)
	if err != nil {
		return err
	}
	m.bars = bars
	m.msi = newMSIRouter(m.vm)
	m.undo.add(m.msi.close)
	m.intx = newINTxLines(m.vm.IRQLine)
	pio = append(pio, PIODevice{Name: "pci-config", Base: pci.ConfigIOBase, Size: pci.ConfigIOSize, Dev: pci.NewConfigIO(m.pci)})
	for _, d := range append(pio, m.cfg.ExtraPIO...) {
		if err := m.exits.pio.Insert(uint64(d.Base), uint64(d.Size), d.Name, d.Dev); err != nil {
			return err
		}
	}
	return nil
}

func afterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

// checkVCPULimit refuses more vCPUs than this host's KVM creates in one
// VM (KVM_CAP_MAX_VCPUS; 0 when KVM does not say), before any is created,
// with an error that says what to give instead of KVM_CREATE_VCPU's EINVAL.
func checkVCPULimit(cpus, max int) error {
	if max > 0 && cpus > max {
		return fmt.Errorf("%w: %d CPUs, but this host's KVM allows at most %d in a VM; give at most %d", ErrConfig, cpus, max, max)
	}
	return nil
}

// Memory is the guest's RAM, for embedders and tests.
func (m *Machine) Memory() *guestmem.Memory { return m.mem }

// Close releases the VM, its vCPUs and memory.
func (m *Machine) Close() error {
	m.kickMu.Lock()
	m.closed = true
	m.kickMu.Unlock()
	m.stopVirtio()
	return m.undo.run()
}

// Run runs the guest until it resets, powers off, crashes, or Stop is
// called (for example when ctx is cancelled), and reports how it ended.
// A Machine runs once.
func (m *Machine) Run(ctx context.Context) Outcome {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	startuptrace.Mark("run")
	ran := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-ctx.Done():
			m.Stop(ReasonInterrupted, "")
		case <-ran:
		}
	}()
	// The vCPUs enter the guest while another goroutine installs the
	// seccomp filter (0.2 ms here, most of it the kernel running the
	// filter for every call number), so the guest's first instructions
	// run meanwhile. Nothing the guest does reaches the VMM's code before
	// the filter is in: each vCPU waits for m.confined before it handles
	// its first exit, and the queue goroutines, which act on the guest's
	// notifications, start after it.
	go func() {
		m.confine()
		if m.cfg.ConsoleIn != nil {
			m.feedConsole(ctx)
		}
	}()
	// vCPU 0's goroutine is started last: the runtime runs the newest
	// goroutine next on this thread once Run blocks in wg.Wait, so the
	// boot vCPU enters the guest without waiting for another thread.
	var wg sync.WaitGroup
	for i := len(m.vcpus) - 1; i >= 0; i-- {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.runVCPU(i)
		}()
	}
	wg.Wait()
	<-m.confined // the queue goroutines have started (or never will) before Close stops them
	close(ran)
	<-watched // no Stop may touch the vCPUs once Run has returned
	if err := m.serial.Flush(); err != nil {
		m.Stop(ReasonVMMError, fmt.Sprintf("console output: %v", err))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.outcome.Unhandled = m.exits.counts()
	m.outcome.Emulated = m.emulated.snapshot()
	m.judgeEnd()
	return m.outcome
}

// confine installs the seccomp filter, when the Config asks for it, and
// starts the queue goroutines, then lets the vCPUs handle exits. A filter
// that cannot be installed stops the machine before any exit is handled.
func (m *Machine) confine() {
	defer close(m.confined)
	if m.cfg.Seccomp {
		if err := installSeccomp(); err != nil {
			m.Stop(ReasonVMMError, err.Error())
			return
		}
		startuptrace.Mark("seccomp")
	}
	m.startVirtio()
}

// installSeccomp is seccomp.Install; tests replace it, as a filter, once
// in, stays for the life of the process.
var installSeccomp = seccomp.Install

// judgeEnd tells a guest kernel's panic from a clean reset or power-off
// (Linux with panic=-1 reboots at once) and keeps the console's last lines
// in the outcome. m.mu is held.
func (m *Machine) judgeEnd() {
	o := &m.outcome
	if o.Reason == ReasonReset || o.Reason == ReasonPowerOff {
		if line, ok := m.tail.panicLine(); ok {
			o.Reason, o.Detail = ReasonGuestPanic, line
		}
	}
	o.ConsoleTail = m.tail.lines(outcomeTailLines)
}

// outcomeTailLines is how many console lines an Outcome keeps.
const outcomeTailLines = 20

// Stop ends the run with reason, unless it already ended: the first reason
// wins. It may be called from any goroutine, including a vCPU's own.
func (m *Machine) Stop(reason Reason, detail string) {
	m.mu.Lock()
	if m.outcome.Reason == ReasonNone {
		m.outcome.Reason, m.outcome.Detail = reason, detail
	}
	m.mu.Unlock()
	if m.stopping.Swap(true) {
		return
	}
	m.kickAll()
}

// feedConsole copies host input to the UART, waiting while its receive
// queue is full, until the input ends or the run does.
func (m *Machine) feedConsole(ctx context.Context) {
	buf := make([]byte, 256)
	for {
		n, err := m.cfg.ConsoleIn.Read(buf)
		if n > 0 {
			if m.serial.FeedInput(ctx, buf[:n]) != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
