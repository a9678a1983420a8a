// Package e2e boots guests on the real /dev/kvm through the vmm command.
// The micro-guest tests (microguest_test.go, bootinfo_test.go) run on every
// test run; without /dev/kvm they skip, saying so.
package e2e

import (
	"os"
	"testing"

	"github.com/vmm-dev/vmm/internal/microguest"
	"github.com/vmm-dev/vmm/vmtest"
)

// TestMain removes the vmm binary vmtest built for this package.
func TestMain(m *testing.M) { os.Exit(vmtest.Main(m)) }

// guest returns the named micro-guest's bzImage, skipping without KVM.
func guest(t *testing.T, name string) string {
	t.Helper()
	vmtest.RequireKVM(t)
	return microguest.BuildT(t, name)
}
