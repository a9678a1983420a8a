package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmm-dev/vmm/internal/microguest"
	"github.com/vmm-dev/vmm/vmm/doctor"
)

// Options are the command line's choices.
type Options struct {
	Runs  int    // runs of each side per figure, after one warm-up
	Burst int    // VMs the burst suite starts at once
	VMM   string // vmm binary; empty builds bin/vmm
	QEMU  string // QEMU binary; empty looks up qemu-system-x86_64
	// Baseline is a vmm binary that start-up and the guest suites compare
	// with instead of QEMU; empty compares with QEMU.
	Baseline string
}

// Machine describes the host the figures come from.
type Machine struct {
	CPU    string `json:"cpu"`
	Cores  int    `json:"cores"`
	Kernel string `json:"kernel"`
	KVM    string `json:"kvm"` // the KVM vendor module and what it does
	QEMU   string `json:"qemu"`
	Date   string `json:"date"`
}

// Env is what every suite gets: the binaries, a work directory for guests
// and stamps, and the host's description.
type Env struct {
	Options
	Machine Machine
	Doctor  doctor.Report
	Work    string // removed by Close
	Cores   int
	log     io.Writer
	guests  map[string]string
	shim    string
	floors  []floorProgram // built by floorPrograms
}

// NewEnv builds vmm (unless given), finds QEMU and describes the host.
func NewEnv(opts Options) (*Env, error) {
	e := &Env{Options: opts, Cores: runtime.NumCPU(), log: os.Stderr, guests: map[string]string{}}
	qemu := opts.QEMU
	if qemu == "" {
		qemu = "qemu-system-x86_64"
	}
	path, err := exec.LookPath(qemu)
	if err != nil {
		return nil, fmt.Errorf("QEMU is the peer every figure is compared with: %w (install qemu-system-x86: make deps)", err)
	}
	e.QEMU = path
	if e.Baseline != "" {
		bin, err := exec.LookPath(e.Baseline)
		if err == nil {
			bin, err = filepath.Abs(bin)
		}
		if err != nil {
			return nil, fmt.Errorf("-baseline: %w", err)
		}
		e.Baseline = bin
	}
	work, err := os.MkdirTemp("", "vmm-bench-")
	if err != nil {
		return nil, err
	}
	e.Work = work
	if e.VMM == "" {
		if e.VMM, err = buildVMM(work); err != nil {
			e.Close()
			return nil, err
		}
	}
	e.Logf("describing the host (vmm doctor)")
	e.Doctor = doctor.Check(doctor.LocalHost())
	e.Machine = describeHost(e.QEMU, e.Doctor)
	e.Machine.Cores = e.Cores
	return e, nil
}

// buildVMM builds ./cmd/vmm of the module this runs in, into dir.
func buildVMM(dir string) (string, error) {
	out := filepath.Join(dir, "vmm")
	cmd := exec.Command("go", "build", "-o", out, "github.com/vmm-dev/vmm/cmd/vmm")
	// Static, as make build makes it: with cgo on (go build's default
	// here) the binary is linked against libc and starts about 1.3 ms
	// later, which is not what users run.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build vmm: %w", err)
	}
	return out, nil
}

// Close removes the work directory.
func (e *Env) Close() {
	if e.Work != "" {
		os.RemoveAll(e.Work)
		e.Work = ""
	}
}

// Logf reports progress on stderr, away from the results.
func (e *Env) Logf(format string, a ...any) {
	fmt.Fprintf(e.log, "bench: "+format+"\n", a...)
}

// Guest builds the named micro-guest once and returns its bzImage's path.
func (e *Env) Guest(name string) (string, error) {
	if p, ok := e.guests[name]; ok {
		return p, nil
	}
	p, err := microguest.Build(name, e.Work)
	if err != nil {
		return "", err
	}
	e.guests[name] = p
	return p, nil
}

// describeHost collects the report's header.
func describeHost(qemu string, d doctor.Report) Machine {
	m := Machine{CPU: cpuModel(), Date: time.Now().UTC().Format("2006-01-02 15:04 UTC")}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Release[:])
	}
	m.KVM = d.Virtualization
	if d.HypervisorModule != "" {
		m.KVM = d.HypervisorModule + " (" + d.Virtualization + " virtualization)"
	}
	if out, err := exec.Command(qemu, "--version").Output(); err == nil {
		m.QEMU, _, _ = strings.Cut(string(out), "\n")
	}
	return m
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
