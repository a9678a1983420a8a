package vmtest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// BinaryEnv names the environment variable that points at a prebuilt vmm;
// without it, the vmm package is built once per test process.
const BinaryEnv = "VMM_BINARY"

// vmm runs vmm-images for images and vmm-lab for `vmm lab`, both built
// beside it.
var vmmPackages = []string{"github.com/vmm-dev/vmm/cmd/vmm", "github.com/vmm-dev/vmm/cmd/vmm-images", "github.com/vmm-dev/vmm/cmd/vmm-lab"}

// built is the vmm this process built: one build shared by every test,
// which is why it is package state; Main removes it.
var built struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Binary returns the path of the vmm binary the tests run: $VMM_BINARY if
// set, else one built now with go build (once per process). A failed build
// fails the test with the compiler's output.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(BinaryEnv); p != "" {
		return p
	}
	built.once.Do(build)
	if built.err != nil {
		t.Fatalf("vmtest: %v (or set %s to a vmm binary)", built.err, BinaryEnv)
	}
	return built.path
}

func build() {
	dir, err := os.MkdirTemp("", "vmtest-")
	if err != nil {
		built.err = err
		return
	}
	built.dir = dir
	built.path = filepath.Join(dir, "vmm")
	args := append([]string{"build", "-o", dir + "/"}, vmmPackages...)
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		built.err = errors.New("go " + strings.Join(args, " ") + ": " + err.Error() + "\n" + string(out))
	}
}

// Main runs the tests and then removes the vmm binary built for them, if
// any. Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(vmtest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	return code
}

// RequireKVM skips the test, loudly, when /dev/kvm cannot be opened for
// reading and writing, which is what vmm needs.
func RequireKVM(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("SKIP: /dev/kvm not available: %v", err)
	}
	f.Close()
}
