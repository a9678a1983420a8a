package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func init() { register(suite{name: "start-up", run: runStartup, baseline: true}) }

const helloLine = "hello from a vmm micro-guest"

// runStartup times the hello micro-guest from fork/exec of the VMM to its
// first KVM_RUN, to the guest's first console byte, and to the VMM's exit
// after the guest resets, all on CLOCK_MONOTONIC.
func runStartup(e *Env) ([]Result, error) {
	kernel, err := e.Guest("hello")
	if err != nil {
		return nil, err
	}
	shim, err := e.kvmRunShim()
	if err != nil {
		return nil, err
	}
	spec := vmSpec{kernel: kernel, memMiB: 128, cmdline: "console=ttyS0",
		stamp: filepath.Join(e.Work, "kvm-run.stamp"), shim: shim}
	// Against QEMU, the floors run in the same rounds, after QEMU, so that
	// all four see the same spells of a noisy host. Their figures follow
	// the peer's; vmm has none there.
	var floors []floorProgram
	if e.Baseline == "" {
		if floors, err = e.floorPrograms(); err != nil {
			return nil, err
		}
	}
	v, p, err := alternate(e, "start-up",
		func() ([]float64, error) {
			vals, err := e.startupOnce(sideVMM, spec)
			for range floors {
				vals = append(vals, na)
			}
			return vals, err
		},
		func() ([]float64, error) {
			vals, err := e.startupOnce(sidePeer, spec)
			for _, f := range floors {
				if err != nil {
					break
				}
				var t float64
				t, err = floorOnce(f, spec.memMiB)
				vals = append(vals, t)
			}
			return vals, err
		})
	if err != nil {
		return nil, err
	}
	rs := []Result{
		{Metric: "process start to first KVM_RUN"},
		{Metric: "process start to first guest console byte"},
		{Metric: "process start to exit after guest reset"},
		{Metric: "process start to main (Go runtime and package init)",
			Note: "vmm's own phase trace (VMM_TRACE_STARTUP=1); no QEMU counterpart is measured"},
	}
	peer := peerMicrovm
	if e.Baseline != "" {
		peer = "vmm baseline"
		rs[3].Note = "both builds' phase traces (VMM_TRACE_STARTUP=1)"
	}
	for i := range rs {
		rs[i].Suite, rs[i].Unit, rs[i].PeerName = "start-up", "ms", peer
		rs[i].VMM, rs[i].Peer = v[i], p[i]
	}
	if e.Baseline == "" {
		rs[0].setGoal(goal{Max: 5, MaxRatio: 0.2})
	}
	figures := len(rs) // the floors' figures follow these on the peer's side
	for i, f := range floors {
		rs = append(rs, Result{Suite: "start-up", Unit: "ms",
			Metric:   "process start to first KVM_RUN, over the " + f.name + " floor",
			PeerName: f.name + " floor", VMM: v[0], Peer: p[figures+i], Note: f.note})
	}
	return rs, nil
}

// startupOnce boots hello once and returns the three intervals in ms.
func (e *Env) startupOnce(s side, spec vmSpec) ([]float64, error) {
	os.Remove(spec.stamp)
	p, err := startProc(e.command(s, spec), helloLine)
	if err != nil {
		return nil, err
	}
	if _, err := p.waitMarker(helloLine, 30*time.Second); err != nil {
		p.kill()
		return nil, err
	}
	if err := p.wait(30 * time.Second); err != nil {
		return nil, err
	}
	var firstRun int64
	toMain := math.NaN()
	if s == sideVMM || e.Baseline != "" {
		firstRun, err = parseStartupTrace(p.stderrText())
		if at, ok := parseStartupPhase(p.stderrText(), "main"); ok {
			toMain = ms(at - p.start)
		}
	} else {
		firstRun, err = readStamp(spec.stamp)
	}
	if err != nil {
		return nil, err
	}
	return []float64{ms(firstRun - p.start), ms(p.firstByte - p.start), ms(p.exited - p.start), toMain}, nil
}

// parseStartupTrace finds when vmm's first KVM_RUN began in the phase
// trace VMM_TRACE_STARTUP=1 makes vmm print (internal/startuptrace), in ns.
func parseStartupTrace(stderr string) (int64, error) {
	if at, ok := parseStartupPhase(stderr, "first-kvm-run"); ok {
		return at, nil
	}
	return 0, fmt.Errorf("vmm printed no start-up trace (VMM_TRACE_STARTUP=1)")
}

// parseStartupPhase finds when vmm's start-up phase name ended
// (internal/startuptrace), in ns on CLOCK_MONOTONIC.
func parseStartupPhase(stderr, name string) (int64, bool) {
	prefix := "vmm: startup phase " + name + " at CLOCK_MONOTONIC "
	for line := range strings.Lines(stderr) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
			ns, err := strconv.ParseInt(strings.TrimSuffix(rest, " ns"), 10, 64)
			return ns, err == nil
		}
	}
	return 0, false
}

// readStamp reads the KVM_RUN shim's file: a CLOCK_MONOTONIC time in ns.
func readStamp(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("QEMU's first KVM_RUN was not recorded (LD_PRELOAD shim): %w", err)
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// kvmRunStampEnv names the file the shim writes.
const kvmRunStampEnv = "KVM_RUN_STAMP"

// kvmRunShimC is an LD_PRELOAD library for QEMU (a dynamically linked
// program; vmm, a static Go binary, has its own trace): it wraps ioctl and
// writes CLOCK_MONOTONIC at the first KVM_RUN to $KVM_RUN_STAMP. The clock
// is read before anything else, so the shim's own cost comes after it.
const kvmRunShimC = `#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define KVM_RUN 0xAE80 /* _IO(KVMIO, 0x80) */

static int stamped;

int ioctl(int fd, unsigned long req, ...)
{
	static int (*real)(int, unsigned long, void *);
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (req == KVM_RUN && !__atomic_exchange_n(&stamped, 1, __ATOMIC_SEQ_CST)) {
		struct timespec ts;
		const char *path;
		int f;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		path = getenv("` + kvmRunStampEnv + `");
		if (path && (f = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) >= 0) {
			dprintf(f, "%lld\n", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
			close(f);
		}
	}
	if (!real)
		real = (int (*)(int, unsigned long, void *))dlsym(RTLD_NEXT, "ioctl");
	return real(fd, req, arg);
}
`

// kvmRunShim builds the shim with gcc once and returns the library's path.
func (e *Env) kvmRunShim() (string, error) {
	if e.shim != "" {
		return e.shim, nil
	}
	lib, err := buildC(e.Work, "kvmrunstamp.so", kvmRunShimC, "-shared", "-fPIC", "-ldl")
	if err != nil {
		return "", fmt.Errorf("build the KVM_RUN shim: %w", err)
	}
	e.shim = lib
	return lib, nil
}

// buildC compiles src with gcc -O2 -Wall and flags into dir/out and
// returns out's path; a failure carries gcc's output.
func buildC(dir, out, src string, flags ...string) (string, error) {
	path := filepath.Join(dir, out)
	srcPath := path + ".c"
	if err := os.WriteFile(srcPath, []byte(src), 0o644); err != nil {
		return "", err
	}
	args := append([]string{"-O2", "-Wall", "-o", path, srcPath}, flags...)
	if msg, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("%w\n%s", err, msg)
	}
	return path, nil
}
