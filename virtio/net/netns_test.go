package net_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmm-dev/vmm/virtio/net"
)

// The TAP tests run only inside a network namespace each test creates
// and deletes: nothing they do reaches the host's own interfaces.

// requireTAP skips the test unless it can create namespaces and TAPs.
func requireTAP(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("TAP tests need root: they create a network namespace and a TAP in it")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("TAP tests need /dev/net/tun (modprobe tun): %v", err)
	}
}

// command runs a command that must succeed.
func command(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// netns is a network namespace made for one test.
type netns struct{ name string }

// newNetns creates a namespace named vmmtest-<random>, deleted when the
// test ends.
func newNetns(t testing.TB) *netns {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	ns := &netns{name: "vmmtest-" + hex.EncodeToString(b[:])}
	command(t, "ip", "netns", "add", ns.name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns.name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns.name, err, out)
		}
	})
	return ns
}

// ip runs `ip -n NS args...`.
func (ns *netns) ip(t testing.TB, args ...string) {
	t.Helper()
	command(t, "ip", append([]string{"-n", ns.name}, args...)...)
}

// do runs fn on an OS thread moved into the namespace: sockets and TAPs
// it creates live there. The thread moves back before it is unlocked; if
// it cannot, it stays locked and ends with its goroutine. fn runs on
// another goroutine, so it reports failure by its error, not t.Fatal.
func (ns *netns) do(t testing.TB, fn func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- ns.enter(fn)
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func (ns *netns) enter(fn func() error) error {
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return err
	}
	defer orig.Close()
	target, err := os.Open("/run/netns/" + ns.name)
	if err != nil {
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("setns %s: %w", ns.name, err)
	}
	fnErr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("setns back: %w", err)
	}
	runtime.UnlockOSThread()
	return fnErr
}

// tapEnv is tap0, opened in a fresh namespace, with an AF_PACKET socket
// bound to it: the socket sees what the device sends and sends what the
// device receives.
type tapEnv struct {
	ns   *netns
	tap  *net.TAP
	sock int
}

// newTAPEnv opens tap0 in a new namespace, with IPv6 off so the kernel
// sends no neighbour discovery of its own. If up, it brings tap0 up and
// binds the packet socket; a socket bound to a down link would fail its
// first call with ENETDOWN.
func newTAPEnv(t testing.TB, up bool) *tapEnv {
	t.Helper()
	requireTAP(t)
	env := &tapEnv{ns: newNetns(t), sock: -1}
	env.ns.do(t, func() error {
		var err error
		env.tap, err = net.OpenTAP("tap0")
		return err
	})
	t.Cleanup(func() {
		env.tap.Close()
		if env.sock >= 0 {
			unix.Close(env.sock)
		}
	})
	command(t, "ip", "netns", "exec", env.ns.name, "sysctl", "-q", "-w", "net.ipv6.conf.tap0.disable_ipv6=1")
	if up {
		env.ns.ip(t, "link", "set", "tap0", "up")
		env.ns.do(t, func() error {
			var err error
			env.sock, err = packetSocket("tap0")
			return err
		})
	}
	return env
}

// packetSocket opens an AF_PACKET socket bound to interface name, in the
// calling thread's namespace, that gives up a read after testTimeout.
func packetSocket(name string) (int, error) {
	proto := int(htons(unix.ETH_P_ALL))
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return -1, fmt.Errorf("packet socket: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err == nil {
		err = unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr)
	}
	if err == nil {
		err = unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: int(ifr.Uint32())})
	}
	if err == nil {
		tv := unix.NsecToTimeval(testTimeout.Nanoseconds())
		err = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	}
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("packet socket on %s: %w", name, err)
	}
	return fd, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// sendFrame sends f out of tap0, towards the TAP's reader. It uses
// package syscall, whose write the race detector pairs with the read in
// os.File: that orders the test's guest memory writes before the
// device's reads.
func (env *tapEnv) sendFrame(t testing.TB, f []byte) {
	t.Helper()
	if _, err := syscall.Write(env.sock, f); err != nil {
		t.Fatalf("send on tap0: %v", err)
	}
}

// recvFrame returns the next frame of testEtherType that tap0 received
// from the TAP's writer, skipping any other.
func (env *tapEnv) recvFrame(t testing.TB) []byte {
	t.Helper()
	buf := make([]byte, 70000)
	for {
		n, _, err := unix.Recvfrom(env.sock, buf, 0)
		if err != nil {
			t.Fatalf("receive on tap0: %v", err)
		}
		if n >= 14 && buf[12] == testEtherType>>8 && buf[13] == testEtherType&0xff {
			return append([]byte(nil), buf[:n]...)
		}
	}
}

// readTAP returns the next packet of testEtherType the TAP hands over.
func (env *tapEnv) readTAP(t testing.TB) []byte {
	t.Helper()
	if err := env.tap.SetReadDeadline(time.Now().Add(testTimeout)); err != nil {
		t.Fatal(err)
	}
	defer env.tap.SetReadDeadline(time.Time{})
	buf := make([]byte, net.MaxPacketSize+1)
	for {
		n, err := env.tap.ReadPacket(buf)
		if err != nil {
			t.Fatalf("TAP read: %v", err)
		}
		p := buf[:n]
		if n >= net.HeaderSize+14 && p[net.HeaderSize+12] == testEtherType>>8 && p[net.HeaderSize+13] == testEtherType&0xff {
			return append([]byte(nil), p...)
		}
	}
}
