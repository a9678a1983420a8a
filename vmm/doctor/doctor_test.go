package doctor

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/vmm-dev/vmm/kvm"
)

func fakeHost(module string, kvmErr error) Host {
	return Host{
		OpenKVM: func() (*kvm.System, error) {
			if kvmErr != nil {
				return nil, kvmErr
			}
			return kvm.Open()
		},
		ModuleLoaded: func(n string) bool { return n == module },
		OpenTUN:      func() error { return os.ErrNotExist },
		FileExists:   func(string) bool { return false },
		Probe:        func() (float64, error) { return 2e6, nil },
	}
}

func TestCheck_NoKVM_NoGuests(t *testing.T) {
	r := Check(fakeHost("", &kvm.OpenError{Path: "/dev/kvm", Err: os.ErrNotExist}))
	if r.KVM.Accessible || r.MicroGuests || r.LinuxGuests {
		t.Fatalf("report claims guests run without KVM: %+v", r)
	}
	if !strings.Contains(r.LinuxGuestsReason, "does not exist") {
		t.Fatalf("reason %q does not say what is wrong", r.LinuxGuestsReason)
	}
	if r.TAP.Available || !hasFinding(r, Warn, "tun") {
		t.Fatalf("missing TUN not reported: %+v", r.Findings)
	}
}

func requireKVM(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(kvm.DevicePath); err != nil {
		t.Skipf("SKIP: %s not available (%v): doctor checks against real KVM need it", kvm.DevicePath, err)
	}
}

func TestCheck_SoftwareKVM_SaysLinuxCannotBoot(t *testing.T) {
	requireKVM(t)
	r := Check(fakeHost("kvm_pvm", nil))
	if r.Virtualization != "software" || !r.MicroGuests || r.LinuxGuests {
		t.Fatalf("got %+v", r)
	}
	if r.LinuxGuestsReason != SoftwareKVMReason {
		t.Fatalf("reason %q", r.LinuxGuestsReason)
	}
}

func TestCheck_HardwareKVM_LinuxGuestsRun(t *testing.T) {
	requireKVM(t)
	r := Check(fakeHost("kvm_intel", nil))
	if r.Virtualization != "hardware" || !r.LinuxGuests {
		t.Fatalf("got %+v", r)
	}
}

func TestCheck_ProbeFailure_MeansNoGuests(t *testing.T) {
	requireKVM(t)
	h := fakeHost("kvm_amd", nil)
	h.Probe = func() (float64, error) { return 0, errors.New("boom") }
	r := Check(h)
	if r.MicroGuests || r.LinuxGuests || !hasFinding(r, Fail, "boom") {
		t.Fatalf("got %+v", r)
	}
}

// TestProbeGuestSpeed boots the probe micro-guest on the real /dev/kvm.
func TestProbeGuestSpeed(t *testing.T) {
	requireKVM(t)
	ips, err := ProbeGuestSpeed()
	if err != nil {
		t.Fatal(err)
	}
	if ips <= 0 {
		t.Fatalf("ips = %v", ips)
	}
	t.Logf("guest speed: %.3g instructions/s", ips)
}

func hasFinding(r Report, l Level, sub string) bool {
	for _, f := range r.Findings {
		if f.Level == l && strings.Contains(f.Text, sub) {
			return true
		}
	}
	return false
}
