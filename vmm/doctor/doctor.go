// Package doctor checks what a host can do for vmm: KVM access and the
// capabilities the VMM needs, whether guests run on hardware virtualization
// or a software-only KVM (and how fast), and TAP networking. Each finding
// says what it means for the user.
package doctor

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/vmm-dev/vmm/kvm"
)

// Report is what `vmm doctor` prints; its JSON form is for scripts and the
// e2e tests, which skip the Linux tier with LinuxGuestsReason.
type Report struct {
	KVM KVMReport `json:"kvm"`

	// Virtualization is "hardware" (VT-x/AMD-V behind KVM), "software" (a
	// KVM that emulates guests, such as kvm_pvm) or "none".
	Virtualization string `json:"virtualization"`
	// HypervisorModule is the loaded KVM vendor module (kvm_intel, kvm_amd,
	// kvm_pvm).
	HypervisorModule string `json:"hypervisor_module,omitempty"`
	// GuestIPS is the measured guest speed: instructions per second of a
	// micro-guest's integer loop.
	GuestIPS   float64 `json:"guest_instructions_per_second,omitempty"`
	ProbeError string  `json:"probe_error,omitempty"`

	TAP      TAPReport `json:"tap"`
	VhostNet bool      `json:"vhost_net"`

	MicroGuests       bool   `json:"micro_guests"`
	LinuxGuests       bool   `json:"linux_guests"`
	LinuxGuestsReason string `json:"linux_guests_reason"`

	Findings []Finding `json:"findings"`
}

// KVMReport covers /dev/kvm itself.
type KVMReport struct {
	Path         string          `json:"path"`
	Accessible   bool            `json:"accessible"`
	Error        string          `json:"error,omitempty"`
	APIVersion   int             `json:"api_version,omitempty"`
	Capabilities map[string]bool `json:"capabilities,omitempty"`
	MaxVCPUs     int             `json:"max_vcpus,omitempty"`
}

// TAPReport covers /dev/net/tun.
type TAPReport struct {
	Available bool   `json:"available"`
	Error     string `json:"error,omitempty"`
}

// Level grades a finding.
type Level string

const (
	OK   Level = "ok"
	Warn Level = "warn"
	Fail Level = "fail"
)

// Finding is one line of advice.
type Finding struct {
	Level Level  `json:"level"`
	Text  string `json:"text"`
}

// Host abstracts what Check reads, so the verdicts are testable without the
// machine they describe.
type Host struct {
	OpenKVM      func() (*kvm.System, error)
	ModuleLoaded func(name string) bool
	OpenTUN      func() error
	FileExists   func(path string) bool
	// Probe boots the speed-probe micro-guest and returns guest
	// instructions per second.
	Probe func() (float64, error)
}

// LocalHost is the machine this process runs on.
func LocalHost() Host {
	return Host{
		OpenKVM:      kvm.Open,
		ModuleLoaded: func(n string) bool { _, err := os.Stat("/sys/module/" + n); return err == nil },
		OpenTUN: func() error {
			f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
			if err == nil {
				f.Close()
			}
			return err
		},
		FileExists: func(p string) bool { _, err := os.Stat(p); return err == nil },
		Probe:      ProbeGuestSpeed,
	}
}

// required are the capabilities vmm cannot run without.
var required = []struct {
	name string
	cap  int
}{
	{"KVM_CAP_IRQCHIP", kvm.KVM_CAP_IRQCHIP},
	{"KVM_CAP_USER_MEMORY", kvm.KVM_CAP_USER_MEMORY},
	{"KVM_CAP_SET_TSS_ADDR", kvm.KVM_CAP_SET_TSS_ADDR},
	{"KVM_CAP_PIT2", kvm.KVM_CAP_PIT2},
	{"KVM_CAP_EXT_CPUID", kvm.KVM_CAP_EXT_CPUID},
	{"KVM_CAP_IMMEDIATE_EXIT", kvm.KVM_CAP_IMMEDIATE_EXIT},
}

// optional are capabilities later features use.
var optional = []struct {
	name string
	cap  int
}{
	{"KVM_CAP_IRQFD", kvm.KVM_CAP_IRQFD},
	{"KVM_CAP_IOEVENTFD", kvm.KVM_CAP_IOEVENTFD},
	{"KVM_CAP_SET_IDENTITY_MAP_ADDR", kvm.KVM_CAP_SET_IDENTITY_MAP_ADDR},
	{"KVM_CAP_INTERNAL_ERROR_DATA", kvm.KVM_CAP_INTERNAL_ERROR_DATA},
}

// SoftwareKVMReason is why Linux guests do not work on a software-only KVM,
// from the measurements in docs/software-kvm.md.
const SoftwareKVMReason = "this host's KVM is a software hypervisor (kvm_pvm): guests are emulated at about a million instructions a second. " +
	"With vmm's software-kvm profile (on by default here) a Linux kernel boots to the start of /init (the project's minimal kernel, with 2 CPUs, ACPI, PCI and virtio, in under a minute; " +
	"Debian's cloud kernel boots for about 10 minutes and stops at SSE inside the kernel), but user space cannot run: kvm_pvm performs a guest's SYSCALL without entering the kernel, " +
	"so init dies at its first system call. Micro-guests and the test suite run; see docs/software-kvm.md"

// Check examines the host.
func Check(h Host) Report {
	r := Report{KVM: KVMReport{Path: kvm.DevicePath}, Virtualization: "none"}
	add := func(l Level, format string, a ...any) {
		r.Findings = append(r.Findings, Finding{Level: l, Text: fmt.Sprintf(format, a...)})
	}

	sys, err := h.OpenKVM()
	if err != nil {
		r.KVM.Error = err.Error()
		r.LinuxGuestsReason = "KVM is not usable: " + err.Error()
		add(Fail, "%v", err)
	} else {
		r.KVM.Accessible = true
		r.KVM.APIVersion, _ = sys.APIVersion()
		r.KVM.Capabilities = map[string]bool{}
		var missing []string
		for _, c := range required {
			ok := sys.CheckExtension(c.cap) > 0
			r.KVM.Capabilities[c.name] = ok
			if !ok {
				missing = append(missing, c.name)
			}
		}
		for _, c := range optional {
			r.KVM.Capabilities[c.name] = sys.CheckExtension(c.cap) > 0
		}
		r.KVM.MaxVCPUs = sys.CheckExtension(kvm.KVM_CAP_MAX_VCPUS)
		sys.Close()
		if len(missing) > 0 {
			r.LinuxGuestsReason = "KVM lacks " + strings.Join(missing, ", ")
			add(Fail, "KVM API %d lacks capabilities vmm needs: %s; upgrade the host kernel", r.KVM.APIVersion, strings.Join(missing, ", "))
		} else {
			r.MicroGuests = true
			add(OK, "%s is accessible: KVM API %d with every capability vmm needs (up to %d vCPUs)", kvm.DevicePath, r.KVM.APIVersion, r.KVM.MaxVCPUs)
		}
	}

	for _, m := range []string{"kvm_pvm", "kvm_intel", "kvm_amd"} {
		if h.ModuleLoaded(m) {
			r.HypervisorModule = m
			break
		}
	}
	switch r.HypervisorModule {
	case "kvm_pvm":
		r.Virtualization = "software"
	case "kvm_intel", "kvm_amd":
		r.Virtualization = "hardware"
	}

	if r.MicroGuests && h.Probe != nil {
		ips, err := h.Probe()
		if err != nil {
			r.ProbeError = err.Error()
			r.MicroGuests = false
			add(Fail, "a micro-guest could not run: %v", err)
		} else {
			r.GuestIPS = ips
			add(OK, "a micro-guest ran: %s guest instructions per second", humanRate(ips))
		}
	}

	switch {
	case !r.MicroGuests:
		if r.LinuxGuestsReason == "" {
			r.LinuxGuestsReason = "no guest can run on this host"
		}
	case r.Virtualization == "software":
		r.LinuxGuestsReason = SoftwareKVMReason
		add(Warn, "Linux guests cannot run user space on this host's software KVM (kvm_pvm): kernels boot to /init, slowly, and init dies at its first system call; micro-guests and tests will run")
	default:
		r.LinuxGuests = true
		r.LinuxGuestsReason = fmt.Sprintf("KVM runs guests on hardware virtualization (%s)", orUnknown(r.HypervisorModule))
		add(OK, "Linux guests can boot: %s", r.LinuxGuestsReason)
	}

	if err := h.OpenTUN(); err != nil {
		r.TAP.Error = err.Error()
		switch {
		case errors.Is(err, os.ErrNotExist):
			add(Warn, "/dev/net/tun is missing: TAP networking (--net tap=...) will not work; load the tun module (modprobe tun)")
		case errors.Is(err, os.ErrPermission):
			add(Warn, "no permission to open /dev/net/tun: TAP networking needs CAP_NET_ADMIN or a TAP device created for your user")
		default:
			add(Warn, "cannot open /dev/net/tun: %v: TAP networking will not work", err)
		}
	} else {
		r.TAP.Available = true
		add(OK, "TAP networking is available (/dev/net/tun)")
	}
	r.VhostNet = h.FileExists("/dev/vhost-net")
	if !r.VhostNet {
		add(OK, "/dev/vhost-net is absent: virtio-net will move packets in the VMM process (fine; vhost is not used)")
	}
	return r
}

func orUnknown(s string) string {
	if s == "" {
		return "vendor module unknown"
	}
	return s
}

func humanRate(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.1f billion", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.1f million", v/1e6)
	}
	return fmt.Sprintf("%.0f", v)
}

// SoftwareKVM reports whether this host's KVM emulates guests in software
// (kvm_pvm), the detection `vmm boot --compat=auto` uses.
func SoftwareKVM() bool {
	_, err := os.Stat("/sys/module/kvm_pvm")
	return err == nil
}
