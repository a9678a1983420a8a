package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/vmm"
	"github.com/vmm-dev/vmm/vmm/netswitch"
	"github.com/vmm-dev/vmm/vmtest"
)

// hostileRuns are the hostile guest's runs: distinct seeds, one to four
// attacking CPUs, both ways of ending. The first seed is the one the guest
// had before it took a seed.
var hostileRuns = []hostileRun{
	{seed: 0x9e3779b9, cpus: 1, end: "reset"},
	{seed: 1, cpus: 2, end: "poweroff"},
	{seed: 2718281828, cpus: 3, end: "reset"},
	{seed: 31415926, cpus: 4, end: "poweroff"},
	{seed: 4242, cpus: 2, end: "reset"},
}

// hostileSeedsEnv, when set, replaces hostileRuns with its comma-separated
// seeds, with 1 to 4 CPUs and both ends in turn: a soak, run by hand, best
// with a race-enabled vmm in VMM_BINARY.
const hostileSeedsEnv = "VMM_HOSTILE_SEEDS"

// hostilePhases are the lines the guest prints as each phase ends, in order.
var hostilePhases = []string{"ports", "uart", "virtio", "virtio-smp", "chaos", "pci", "mmio"}

const (
	// hostileIdle is how long the guest halts every CPU before it ends.
	hostileIdle = time.Second
	// maxIdleCPU bounds vmm's CPU time over wall time while every vCPU is
	// halted: a thread spinning on a broken queue or a stuck device would
	// take most of a core (a guest that spins instead of halting measures
	// 85%); a quiet vmm measures about 3%, the guest's timer calibration
	// and wake-ups included.
	maxIdleCPU = 0.2
	// maxExit bounds the time from the guest's last line to vmm's exit.
	maxExit = 5 * time.Second
	// maxStderrLines bounds vmm's messages: what the guest breaks must not
	// turn into a line on the host per register write.
	maxStderrLines = 20
	// clockTicks is USER_HZ, the unit of /proc/PID/stat's times (100 on
	// every Linux architecture vmm runs on).
	clockTicks = 100
)

// TestHostileGuest runs the hostile micro-guest once per hostileRuns entry
// with every device attached: it writes garbage to every port and across
// the PCI hole, floods the UART, breaks every virtio device's queues
// (looping, out-of-range and out-of-memory chains, broken indirect tables,
// index jumps, bad rings, resets with requests in flight, notify storms,
// random common-config values, MSI-X table and PBA garbage) and fills PCI
// config space with random values, from every CPU at once when it has
// several. Each run must end as the guest asks (a reset or an ACPI power
// off, status 0) within maxExit of its last line, with no Go panic, fatal
// error or race report and few messages on stderr, the disk image intact,
// no device writing its used ring after a reset, and vmm nearly idle while
// the guest's CPUs are halted.
func TestHostileGuest(t *testing.T) {
	kernel := guest(t, "hostile")
	runs := hostileRuns
	if env := os.Getenv(hostileSeedsEnv); env != "" {
		runs = nil
		for i, f := range strings.Split(env, ",") {
			seed, err := strconv.ParseUint(strings.TrimSpace(f), 0, 32)
			if err != nil {
				t.Fatalf("%s: %v", hostileSeedsEnv, err)
			}
			runs = append(runs, hostileRun{seed: uint32(seed), cpus: 1 + i%4, end: []string{"reset", "poweroff"}[i%2]})
		}
	}
	for _, r := range runs {
		t.Run(fmt.Sprintf("seed%d_cpus%d_%s", r.seed, r.cpus, r.end), func(t *testing.T) { r.run(t, kernel) })
	}
}

type hostileRun struct {
	seed uint32
	cpus int
	end  string // "reset" or "poweroff"
}

func (r hostileRun) run(t *testing.T, kernel string) {
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(disk, make([]byte, 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	// A short path of its own: the socket's must fit sun_path.
	swDir, err := os.MkdirTemp("", "hostile-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(swDir)
	sw, err := netswitch.New(filepath.Join(swDir, "sw.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()

	start := time.Now()
	vm := vmtest.Start(t, vmtest.Config{
		Kernel: kernel, Memory: "64M", CPUs: r.cpus,
		Cmdline: fmt.Sprintf("seed=%d cpus=%d end=%s idle=%d", r.seed, r.cpus, r.end, hostileIdle.Milliseconds()),
		Args:    []string{"--disk", disk, "--net", "socket=" + sw.Addr(), "--port", "p,out=" + filepath.Join(dir, "port.out")},
	})
	vm.Expect(fmt.Sprintf(`hostile: seed %d cpus %d\n`, r.seed, r.cpus), 30*time.Second)
	vm.Expect(`hostile: idle\n`, 180*time.Second)
	cpu0, wall0 := cpuTime(t, vm.PID()), time.Now()
	vm.Expect(`hostile: awake\n`, 10*hostileIdle)
	cpu1, wall1 := cpuTime(t, vm.PID()), time.Now()
	vm.Expect(`hostile: survived\n`, 10*time.Second)
	last := time.Now()
	code := vm.Wait(30 * time.Second)
	exit := time.Since(last)

	idle := float64(cpu1-cpu0) / float64(wall1.Sub(wall0))
	t.Logf("ran %v; while halted vmm used %v CPU in %v (%.1f%%); exit took %v",
		last.Sub(start).Round(time.Millisecond), cpu1-cpu0, wall1.Sub(wall0).Round(time.Millisecond), 100*idle, exit.Round(time.Millisecond))
	if code != vmm.StatusGuestOff {
		t.Errorf("vmm exited %d, want %d (the guest's %s)", code, vmm.StatusGuestOff, r.end)
	}
	if exit > maxExit {
		t.Errorf("vmm took %v to exit after the guest's last line, want under %v", exit, maxExit)
	}
	if idle > maxIdleCPU {
		t.Errorf("vmm used %.0f%% of a CPU while every vCPU was halted: something spins", 100*idle)
	}
	checkHostileStderr(t, vm.Stderr(), r.end)
	checkHostileConsole(t, vm.Console(), r.cpus)
	if fi, err := os.Stat(disk); err != nil || fi.Size() != 64<<10 {
		t.Errorf("disk image %v, %v: want it still 64 KiB", fi, err)
	}
}

// checkHostileStderr: no crash of any kind, few lines, and the end the
// guest asked for.
func checkHostileStderr(t *testing.T, stderr, end string) {
	t.Helper()
	for _, bad := range []string{"panic", "goroutine ", "fatal error", "DATA RACE", "SIGSEGV"} {
		if strings.Contains(stderr, bad) {
			t.Errorf("vmm's stderr holds %q", bad)
		}
	}
	if n := strings.Count(stderr, "\n"); n > maxStderrLines {
		t.Errorf("vmm wrote %d lines to stderr, want at most %d", n, maxStderrLines)
	}
	want := map[string]string{"reset": "vmm: guest reset: i8042 reset command", "poweroff": "vmm: guest powered off: ACPI S5"}[end]
	if !strings.Contains(stderr, want) {
		t.Errorf("vmm's stderr does not say %q", want)
	}
}

// checkHostileConsole: every phase ended, in order, and the guest saw
// nothing go wrong on the VMM's side or its own.
func checkHostileConsole(t *testing.T, console string, cpus int) {
	t.Helper()
	at := 0
	for _, phase := range hostilePhases {
		i := strings.Index(console[at:], "hostile: "+phase+" done\n")
		if i < 0 {
			t.Errorf("phase %s did not finish (or not in order)", phase)
			continue
		}
		at += i
	}
	if cpus > 1 && !strings.Contains(console, fmt.Sprintf("hostile: %d cpus attacking\n", cpus)) {
		t.Errorf("the guest did not start %d CPUs", cpus)
	}
	wrong := regexp.MustCompile(`(?m)^hostile: .*(after reset|did not start|stuck|exception).*$`)
	for _, line := range wrong.FindAllString(console, -1) {
		t.Errorf("guest: %s", line)
	}
}

// cpuTime is the user and system time process pid has used, all threads.
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("vmm's CPU time: %v", err)
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is the first, utime the 12th, stime the 13th.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		t.Fatalf("vmm's CPU time: short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("vmm's CPU time: %v, %v", err1, err2)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks
}
