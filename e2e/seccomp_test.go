package e2e

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/vmtest"
)

// TestSeccomp_OnWhileRunning: a running vmm is confined by its filter
// (the kernel reports mode 2, one filter, no_new_privs); --seccomp=off
// leaves it unconfined and says so on stderr. What the filter refuses is
// shown in vmm/seccomp's own test.
func TestSeccomp_OnWhileRunning(t *testing.T) {
	kernel := guest(t, "idle")
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, `(?m)^Seccomp:\s+2$`},
		{[]string{"--seccomp=off"}, `(?m)^Seccomp:\s+0$`},
	} {
		vm := vmtest.Start(t, vmtest.Config{Kernel: kernel, Memory: "32M", Args: append([]string{"--rng=false"}, c.args...)})
		vm.Expect(`idle: touched 0 MiB`, 10*time.Second)
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", vm.PID()))
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(c.want).Match(status) {
			t.Errorf("vmm %q: /proc status lacks %s:\n%s", c.args, c.want, status)
		}
		off := strings.Contains(vm.Stderr(), "WARNING: --seccomp=off")
		if off != (c.args != nil) {
			t.Errorf("vmm %q: stderr %q", c.args, vm.Stderr())
		}
	}
}
