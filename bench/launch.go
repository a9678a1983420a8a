package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// side is who runs a guest: vmm, or the peer it is compared with.
type side int

const (
	sideVMM side = iota
	sidePeer
)

func (s side) String() string {
	if s == sideVMM {
		return "vmm"
	}
	return "QEMU"
}

// peerMicrovm names the peer of the suites in this file.
const peerMicrovm = "QEMU microvm"

// vmSpec is one micro-guest to boot.
type vmSpec struct {
	kernel  string // bzImage
	memMiB  int
	cmdline string
	// stamp, for QEMU, is a file the KVM_RUN shim writes the first
	// KVM_RUN's CLOCK_MONOTONIC time to; empty runs QEMU without the shim.
	stamp string
	shim  string
}

// vmmArgs boots a micro-guest with vmm's defaults but no virtio-rng, so
// that both sides have the same devices: a UART and the legacy platform.
//
// --compat=off: vmm runs as it does on a host with hardware
// virtualization. The micro-guests need none of the software-KVM profile,
// and one of its steps (turning the PIT's lost-tick reinjection off) waits
// for an SRCU grace period in this host's kernel, 13-18 ms in a third of
// starts, which QEMU, with no such profile, does not pay.
func vmmArgs(spec vmSpec) []string {
	return []string{"boot", "--kernel", spec.kernel, "--memory", fmt.Sprintf("%dM", spec.memMiB),
		"--cmdline", spec.cmdline, "--rng=false", "--compat=off"}
}

// qemuArgs boots the same guest under QEMU's microvm machine. QEMU enters
// a bzImage through its 16-bit setup code (qboot, microvm's firmware, does
// as the linuxboot ROM does); the micro-guests' setup and 32-bit entry take
// it from there (boot.BuildBzImage, internal/microguest/src/start.S).
// microvm has no i8042 of its own: -device i8042 adds the one the guests
// reset through, and -no-reboot turns that reset into QEMU's exit. This
// host's software KVM needs arch-capabilities and cx16 off.
func qemuArgs(spec vmSpec) []string {
	return []string{"-M", "microvm", "-enable-kvm", "-cpu", "host,-arch-capabilities,-cx16",
		"-m", fmt.Sprintf("%dM", spec.memMiB), "-nodefaults", "-no-user-config", "-nographic",
		"-serial", "stdio", "-device", "i8042", "-no-reboot",
		"-kernel", spec.kernel, "-append", spec.cmdline}
}

// command is the process that boots spec on side s.
func (e *Env) command(s side, spec vmSpec) *exec.Cmd {
	if s == sideVMM || e.Baseline != "" {
		bin := e.VMM
		if s == sidePeer {
			bin = e.Baseline // another vmm build (-baseline)
		}
		cmd := exec.Command(bin, vmmArgs(spec)...)
		cmd.Env = append(os.Environ(), "VMM_TRACE_STARTUP=1", "VMM_TRACE_MEMORY=1")
		return cmd
	}
	cmd := exec.Command(e.QEMU, qemuArgs(spec)...)
	if spec.stamp != "" {
		cmd.Env = append(os.Environ(), "LD_PRELOAD="+spec.shim, kvmRunStampEnv+"="+spec.stamp)
	}
	return cmd
}

// proc is a running VMM whose console output is watched for markers, each
// stamped with the CLOCK_MONOTONIC time the read that completed it returned.
type proc struct {
	cmd   *exec.Cmd
	start int64 // CLOCK_MONOTONIC ns just before fork and exec

	mu        sync.Mutex
	out       []byte
	firstByte int64
	seen      map[string]int64 // marker -> when it appeared
	changed   chan struct{}    // closed and replaced on every read
	eof       bool

	done    chan struct{} // closed when the process has been waited for
	exited  int64
	waitErr error
	stderr  bytes.Buffer // read only after done
}

// startProc starts cmd with stdin /dev/null, its stdout watched for markers
// and its stderr kept.
func startProc(cmd *exec.Cmd, markers ...string) (*proc, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, seen: map[string]int64{}, changed: make(chan struct{}), done: make(chan struct{})}
	for _, m := range markers {
		p.seen[m] = 0
	}
	cmd.Stdout = w
	cmd.Stderr = &p.stderr
	p.start = monoNow()
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		return nil, err
	}
	go p.read(r)
	go func() {
		p.waitErr = cmd.Wait()
		p.exited = monoNow()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) read(r *os.File) {
	defer r.Close()
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		now := monoNow()
		p.mu.Lock()
		if n > 0 {
			if p.firstByte == 0 {
				p.firstByte = now
			}
			p.out = append(p.out, buf[:n]...)
			for m, at := range p.seen {
				if at == 0 && bytes.Contains(p.out, []byte(m)) {
					p.seen[m] = now
				}
			}
		}
		if err != nil {
			p.eof = true
		}
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// waitMarker waits until marker (one of startProc's) has appeared on the
// console and returns when it did.
func (p *proc) waitMarker(marker string, timeout time.Duration) (int64, error) {
	deadline := time.After(timeout)
	for {
		p.mu.Lock()
		at, eof, changed := p.seen[marker], p.eof, p.changed
		p.mu.Unlock()
		switch {
		case at != 0:
			return at, nil
		case eof:
			<-p.done
			return 0, fmt.Errorf("%s exited (%v) before printing %q%s", p.name(), p.waitErr, marker, p.tail())
		}
		select {
		case <-changed:
		case <-deadline:
			return 0, fmt.Errorf("%s did not print %q in %v%s", p.name(), marker, timeout, p.tail())
		}
	}
}

// wait waits for the process to exit by itself and fails unless it exited
// with status 0.
func (p *proc) wait(timeout time.Duration) error {
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("%s did not exit in %v%s", p.name(), timeout, p.tail())
	}
	if p.waitErr != nil {
		return fmt.Errorf("%s: %v%s", p.name(), p.waitErr, p.tail())
	}
	return nil
}

// stop ends the process with SIGINT (vmm stops the VM at once and still
// prints its traces; QEMU exits; SIGTERM would make vmm press the guest's
// ACPI power button and wait), and kills it if it has not exited in a few
// seconds.
func (p *proc) stop() {
	p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.kill()
	}
}

func (p *proc) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) console() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return string(p.out)
}

// stderrText is the process's stderr; only once it has exited.
func (p *proc) stderrText() string {
	<-p.done
	return p.stderr.String()
}

func (p *proc) name() string { return filepath.Base(p.cmd.Path) }

// tail is the end of the console and, once exited, stderr, for errors.
func (p *proc) tail() string {
	s := "\nconsole: " + lastBytes(p.console(), 400)
	select {
	case <-p.done:
		s += "\nstderr: " + lastBytes(p.stderr.String(), 400)
	default:
	}
	return s
}

func lastBytes(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// monoNow is CLOCK_MONOTONIC in ns: the clock vmm's start-up trace and
// the KVM_RUN shim use, shared by every process on the host.
func monoNow() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err) // CLOCK_MONOTONIC cannot fail on Linux
	}
	return ts.Nano()
}

// ms converts a CLOCK_MONOTONIC interval to milliseconds.
func ms(ns int64) float64 { return float64(ns) / 1e6 }

// na marks a figure one side does not have.
var na = math.NaN()

// alternate measures figures on both sides: one warm-up of each, then
// vmm and peer in turn, runs times each. A run returns one value per
// figure; NaN leaves a figure out for that side.
func alternate(e *Env, what string, vmm, peer func() ([]float64, error)) (v, p []Sample, err error) {
	sides := []struct {
		s   side
		run func() ([]float64, error)
		out *[]Sample
	}{{sideVMM, vmm, &v}, {sidePeer, peer, &p}}
	for i := -1; i < e.Runs; i++ {
		for _, sd := range sides {
			vals, err := sd.run()
			if err != nil {
				return nil, nil, fmt.Errorf("%s, %s run %d: %w", what, e.peerLabel(sd.s), i+1, err)
			}
			if i < 0 {
				continue // the warm-up
			}
			if *sd.out == nil {
				*sd.out = make([]Sample, len(vals))
			}
			for j, x := range vals {
				if !math.IsNaN(x) {
					(*sd.out)[j].Values = append((*sd.out)[j].Values, x)
				}
			}
		}
	}
	e.Logf("%s: vmm %s; %s %s", what, medians(v), e.peerLabel(sidePeer), medians(p))
	return v, p, nil
}

// peerLabel names side s in progress lines and errors: "vmm", and for the
// peer "QEMU" or, with -baseline, "baseline".
func (e *Env) peerLabel(s side) string {
	if s == sidePeer && e.Baseline != "" {
		return "baseline"
	}
	return s.String()
}

func medians(s []Sample) string {
	parts := make([]string, len(s))
	for i, x := range s {
		parts[i] = "—"
		if len(x.Values) > 0 {
			parts[i] = formatValue(x.Median())
		}
	}
	return strings.Join(parts, " ")
}
