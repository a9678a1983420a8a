package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Network tests run in a network namespace each test creates and deletes:
// the TAP, the VM and the test's own sockets all live there, so no frame
// reaches the host's interfaces and nothing is configured in the root
// namespace.

// newNetns creates namespace vmmtest-<random> holding an up TAP device tap
// (with address addr, e.g. "10.0.2.1/24", unless addr is empty), loopback
// up and IPv6 off (no router solicitations or NDP in the captures). It is
// deleted, and the TAP with it, when the test ends. Without root the test
// skips, saying so.
func newNetns(t *testing.T, tap, addr string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("NETWORK NAMESPACE TEST SKIPPED: it needs root (ip netns add, TAP devices)")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("NETWORK NAMESPACE TEST SKIPPED: no /dev/net/tun (modprobe tun): %v", err)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("ip not found: run `make deps` (iproute2)")
	}
	var b [4]byte
	rand.Read(b[:])
	ns := "vmmtest-" + hex.EncodeToString(b[:])
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", ns)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v\n%s", ns, err, out)
		}
	})
	ip("netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1", "net.ipv6.conf.all.disable_ipv6=1")
	ip("-n", ns, "link", "set", "lo", "up")
	ip("-n", ns, "tuntap", "add", "dev", tap, "mode", "tap")
	if addr != "" {
		ip("-n", ns, "addr", "add", addr, "dev", tap)
	}
	ip("-n", ns, "link", "set", tap, "up")
	return ns
}

// inNetns runs fn on a thread that has joined network namespace ns. The
// thread stays locked, so Go ends it with the goroutine instead of reusing
// it elsewhere. Sockets fn opens belong to ns for their whole life.
func inNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open(filepath.Join("/run/netns", ns))
		if err != nil {
			errc <- err
			return
		}
		err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
		f.Close()
		if err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}
