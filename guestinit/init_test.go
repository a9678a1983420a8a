package guestinit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// recorder is a fake machine that logs what init does to it.
type recorder struct {
	pid       int
	mountErr  error
	moduleErr error
	offErr    error
	runMode   bool
	calls     []string
}

func (r *recorder) ops() Ops {
	return Ops{
		PID: func() int { return r.pid },
		Mount: func(m Mount) error {
			r.calls = append(r.calls, "mount "+m.Target)
			return r.mountErr
		},
		LoadModules: func() error {
			r.calls = append(r.calls, "modules")
			return r.moduleErr
		},
		Release: func() (string, error) { return "6.1.0-test", nil },
		Check: func(console io.Writer) {
			r.calls = append(r.calls, "check")
			fmt.Fprintln(console, "VMM-CHECK cpus online=0 count=1 ok")
		},
		PowerOff: func() error {
			r.calls = append(r.calls, "poweroff")
			return r.offErr
		},
		RunMode: func() bool { return r.runMode },
		RunWorkload: func(io.Writer) error {
			r.calls = append(r.calls, "workload")
			return r.offErr
		},
	}
}

func TestRun_PID1_MountsPrintsMarkerPowersOff(t *testing.T) {
	r := &recorder{pid: 1}
	var console bytes.Buffer
	if err := Run(&console, r.ops(), Mounts()); err != nil {
		t.Fatal(err)
	}
	if got, want := console.String(), "VMM-GUESTINIT-OK 6.1.0-test\nVMM-CHECK cpus online=0 count=1 ok\n"; got != want {
		t.Errorf("console = %q, want %q", got, want)
	}
	if got, want := strings.Join(r.calls, ", "), "mount /proc, mount /sys, mount /dev, modules, check, poweroff"; got != want {
		t.Errorf("calls = %s, want %s", got, want)
	}
}

// With a run config the workload runs instead of the checks, and power-off
// is its business.
func TestRun_RunMode_WorkloadInsteadOfChecks(t *testing.T) {
	r := &recorder{pid: 1, runMode: true}
	var console bytes.Buffer
	if err := Run(&console, r.ops(), Mounts()); err != nil {
		t.Fatal(err)
	}
	if got, want := console.String(), "VMM-GUESTINIT-OK 6.1.0-test\n"; got != want {
		t.Errorf("console = %q, want %q", got, want)
	}
	if got, want := strings.Join(r.calls, ", "), "mount /proc, mount /sys, mount /dev, modules, workload"; got != want {
		t.Errorf("calls = %s, want %s", got, want)
	}
}

func TestWantRunMode_ConfigWithoutChecks(t *testing.T) {
	for _, tt := range []struct {
		cmdline    string
		haveConfig bool
		want       bool
	}{
		{"console=ttyS0 quiet", true, true},
		{"console=ttyS0 quiet", false, false},
		{"console=ttyS0 vmm.check=runconfig", true, false},
		{"console=ttyS0 vmm.check=cpus", false, false},
		{"console=ttyS0 vmm.check=nonsense", true, false}, // the checks report the bad option
	} {
		if got := wantRunMode(tt.cmdline, tt.haveConfig); got != tt.want {
			t.Errorf("wantRunMode(%q, %v) = %v, want %v", tt.cmdline, tt.haveConfig, got, tt.want)
		}
	}
}

func TestRun_ModuleFails_ReportedAndBootGoesOn(t *testing.T) {
	r := &recorder{pid: 1, moduleErr: errors.New("load module /lib/modules/x.ko: exec format error")}
	var console bytes.Buffer
	if err := Run(&console, r.ops(), Mounts()); err != nil {
		t.Fatal(err)
	}
	if got, want := console.String(), "guestinit: load module /lib/modules/x.ko: exec format error\nVMM-GUESTINIT-OK 6.1.0-test\n"; !strings.HasPrefix(got, want) {
		t.Errorf("console = %q, want it to start %q", got, want)
	}
	if got, want := strings.Join(r.calls, ", "), "mount /proc, mount /sys, mount /dev, modules, check, poweroff"; got != want {
		t.Errorf("calls = %s, want %s", got, want)
	}
}

func TestRun_NotPID1_RefusesAndTouchesNothing(t *testing.T) {
	r := &recorder{pid: 4242}
	var console bytes.Buffer
	err := Run(&console, r.ops(), Mounts())
	if !errors.Is(err, ErrNotPID1) || len(r.calls) != 0 || console.Len() != 0 {
		t.Fatalf("err = %v, calls %v, console %q; want ErrNotPID1 and nothing done", err, r.calls, console.String())
	}
}

func TestRun_MountFails_NoMarkerNoPowerOff(t *testing.T) {
	r := &recorder{pid: 1, mountErr: unix.ENODEV}
	var console bytes.Buffer
	err := Run(&console, r.ops(), Mounts())
	if !errors.Is(err, unix.ENODEV) || !strings.Contains(err.Error(), "proc on /proc type proc") {
		t.Errorf("err = %v, want ENODEV naming the mount", err)
	}
	if console.Len() != 0 || len(r.calls) != 1 {
		t.Errorf("console %q, calls %v: want no marker and only the failed mount", console.String(), r.calls)
	}
}

func TestRun_PowerOffFails_Reported(t *testing.T) {
	r := &recorder{pid: 1, offErr: unix.EPERM}
	if err := Run(&bytes.Buffer{}, r.ops(), nil); !errors.Is(err, unix.EPERM) {
		t.Fatalf("err = %v, want EPERM", err)
	}
}

func TestMounts_KernelFilesystemsInOrder(t *testing.T) {
	want := []Mount{
		{Source: "proc", Target: "/proc", FSType: "proc", Flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{Source: "sysfs", Target: "/sys", FSType: "sysfs", Flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{Source: "devtmpfs", Target: "/dev", FSType: "devtmpfs", Flags: unix.MS_NOSUID, Data: "mode=0755"},
	}
	got := Mounts()
	if len(got) != len(want) {
		t.Fatalf("Mounts() = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Mounts()[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestEndCommand(t *testing.T) {
	for cmdline, want := range map[string]int{
		"console=ttyS0":                        unix.LINUX_REBOOT_CMD_POWER_OFF,
		"console=ttyS0 guestinit.end=reboot\n": unix.LINUX_REBOOT_CMD_RESTART,
		"guestinit.end=poweroff":               unix.LINUX_REBOOT_CMD_POWER_OFF,
		"guestinit.end=rebootx":                unix.LINUX_REBOOT_CMD_POWER_OFF,
	} {
		if got := EndCommand(cmdline); got != want {
			t.Errorf("EndCommand(%q) = %#x, want %#x", cmdline, got, want)
		}
	}
}
