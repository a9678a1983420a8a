package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/guestinit/protocol"
	"github.com/vmm-dev/vmm/images"
)

// The virtio tests boot Debian's cloud kernel with guestinit and the virtio
// modules in the initramfs, attach an ext4 disk and a TAP NIC, and let
// guestinit's checks (package protocol) prove from inside the guest that
// the kernel drives both: it hashes a file the host put on the disk and
// writes one back, configures eth0 and serves the disk's file over TCP,
// answers ping, and lists the CPUs and PCI functions it sees. The host side
// checks every answer. Network traffic stays inside a network namespace of
// the test's own: the root namespace gets no address, route or link.

const (
	tapName   = "tap0"
	hostAddr  = "10.0.2.1/24" // the TAP's address, inside the namespace only
	guestAddr = "10.0.2.15/24"
	servePort = 8080
	// payloadName is the file the host puts on the disk; the guest hashes
	// it and serves it. writtenName is the file the guest writes.
	payloadName = "/payload.bin"
	writtenName = "/from-guest.txt"
	payloadSize = 128 << 10 // several TCP segments and disk blocks
	// afterNetUp bounds each step after the guest's net line: ping, fetch,
	// and the guest's unmount and power-off.
	afterNetUp = 30 * time.Second
)

// PCI IDs of modern-only virtio devices (virtio 1.2 §4.1.2.1: 0x1040 plus
// the device type), as vmm exposes them.
const (
	pciVirtioNet = "1af4:1041"
	pciVirtioBlk = "1af4:1042"
)

// virtioRun is one boot of the scenario: what the host prepared and what
// it expects back.
type virtioRun struct {
	kernel  images.Kernel
	initrd  string
	disk    string // ext4 image holding payloadName
	netns   string // holds tapName with hostAddr
	payload []byte
	written []byte // what the guest is asked to write to writtenName
	cmdline string
}

// launcher starts the machine under test inside r.netns and returns it
// running.
type launcher func(t *testing.T, r *virtioRun) *guestProc

func TestLinux_QEMUTCG_VirtioDiskNetCPUs(t *testing.T) {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Fatal("qemu-system-x86_64 not found: run `make deps` (installs Debian's qemu-system-x86)")
	}
	runVirtio(t, func(t *testing.T, r *virtioRun) *guestProc {
		return startInNetns(t, r.netns, qemu,
			"-accel", "tcg", "-M", qemuMachine, "-cpu", "max", "-smp", "2", "-m", "256M",
			"-nographic", "-no-reboot",
			"-kernel", r.kernel.Path, "-initrd", r.initrd, "-append", r.cmdline,
			// QEMU's virtio-*-pci are transitional (1af4:1000/1001) unless
			// legacy is off; modern-only is what vmm exposes.
			"-drive", "file="+r.disk+",if=none,id=d0,format=raw",
			"-device", "virtio-blk-pci,drive=d0,disable-legacy=on",
			"-netdev", "tap,id=n0,ifname="+tapName+",script=no,downscript=no",
			"-device", "virtio-net-pci,netdev=n0,disable-legacy=on")
	})
}

func TestLinux_VMM_VirtioDiskNetCPUs(t *testing.T) {
	bin := requireLinuxGuests(t)
	runVirtio(t, func(t *testing.T, r *virtioRun) *guestProc {
		return startInNetns(t, r.netns, bin, "boot",
			"--kernel", r.kernel.Path, "--initrd", r.initrd, "--cmdline", r.cmdline,
			"--memory", "512M", "--cpus", "2", "--disk", r.disk, "--net", "tap="+tapName)
	})
}

// runVirtio prepares the disk, the namespace and the guest, boots it with
// launch, talks to it over the network while it runs and checks everything
// it reported and left on the disk.
func runVirtio(t *testing.T, launch launcher) {
	requireVirtioHost(t)
	start := time.Now()
	r := &virtioRun{payload: randomBytes(t, payloadSize)}
	r.written = []byte("written by the guest " + hex.EncodeToString(randomBytes(t, 8)) + "\n")
	r.kernel, r.initrd = virtioGuest(t)
	r.disk = makeExt4(t, map[string][]byte{payloadName: r.payload})
	r.netns = newNetns(t, tapName, hostAddr)
	r.cmdline = linuxCmdline + " " + strings.Join(virtioChecks(r.written).Params(), " ")
	t.Logf("host prepared in %v", time.Since(start).Round(time.Millisecond))

	boot := time.Now()
	g := launch(t, r)
	netUp := g.expectResult(t, protocol.CheckNet, linuxBootTime)
	t.Logf("guest: %s after %v", netUp, time.Since(boot).Round(time.Millisecond))

	guestIP := netip.MustParsePrefix(guestAddr).Addr()
	rtt, err := pingInNetns(r.netns, guestIP, afterNetUp)
	if err != nil {
		t.Fatalf("ping %s in %s: %v; console end:\n%s", guestIP, r.netns, err, consoleTail(g.console.String()))
	}
	got, err := fetchInNetns(r.netns, netip.AddrPortFrom(guestIP, servePort), afterNetUp)
	if err != nil {
		t.Fatalf("fetch from %s:%d in %s: %v; console end:\n%s", guestIP, servePort, r.netns, err, consoleTail(g.console.String()))
	}
	if !bytes.Equal(got, r.payload) {
		t.Errorf("TCP from the guest: %d bytes (sha256 %s), want the disk's %d (sha256 %s)",
			len(got), sha256Hex(got), len(r.payload), sha256Hex(r.payload))
	}
	t.Logf("ping answered in %v; %d bytes over TCP", rtt.Round(time.Microsecond), len(got))

	if err := g.wait(afterNetUp); err != nil {
		t.Fatalf("%v; console end:\n%s", err, consoleTail(g.console.String()))
	}
	t.Logf("guest powered off %v after boot", time.Since(boot).Round(time.Millisecond))
	checkVirtioResults(t, r, g.console.String())
	checkDiskAfter(t, r)
	t.Logf("whole run %v", time.Since(start).Round(time.Millisecond))
}

// virtioChecks asks guestinit for every check, with the disk's payload
// served over TCP.
func virtioChecks(written []byte) protocol.Checks {
	return protocol.Checks{
		CPUs: true,
		PCI:  true,
		Disk: &protocol.DiskCheck{
			Device: protocol.DefaultDiskDevice, FSType: "ext4",
			Hash: payloadName, Write: writtenName, Data: written,
		},
		Net: &protocol.NetCheck{
			Interface: protocol.DefaultInterface, Addr: netip.MustParsePrefix(guestAddr),
			Gateway: netip.MustParsePrefix(hostAddr).Addr(), Port: servePort, File: protocol.MountPoint + payloadName, Timeout: afterNetUp,
		},
	}
}

// checkVirtioResults checks guestinit's result lines after power-off.
func checkVirtioResults(t *testing.T, r *virtioRun, console string) {
	t.Helper()
	results := map[string]protocol.Result{}
	for _, res := range protocol.ParseResults(console) {
		if !res.OK() {
			t.Errorf("guest check failed: %s", res)
		}
		results[res.Name] = res
		t.Logf("guest: %s", res)
	}
	want := func(name, key, value string) {
		t.Helper()
		if got, _ := results[name].Get(key); got != value {
			t.Errorf("guest %s %s = %q, want %q (result: %s)", name, key, got, value, results[name])
		}
	}
	want(protocol.CheckCPUs, "online", "0-1")
	want(protocol.CheckDisk, "sha256", sha256Hex(r.payload))
	want(protocol.CheckDisk, "bytes", fmt.Sprint(len(r.written)))
	want(protocol.ResultServe, "bytes", fmt.Sprint(len(r.payload)))
	want(protocol.ResultUmount, "path", protocol.MountPoint)
	var ids []string
	for _, f := range results[protocol.CheckPCI].Fields {
		ids = append(ids, f.Value)
	}
	if !slices.Contains(ids, pciVirtioBlk) || !slices.Contains(ids, pciVirtioNet) {
		t.Errorf("guest sees PCI functions %v, want %s (virtio-blk) and %s (virtio-net) among them", ids, pciVirtioBlk, pciVirtioNet)
	}
	for _, line := range strings.Split(console, "\n") {
		if strings.HasPrefix(line, "guestinit: ") {
			t.Errorf("guestinit complained: %s", strings.TrimSpace(line))
		}
	}
	if !strings.Contains(console, poweredOff) {
		t.Errorf("no %q on the console: the guest did not power off", poweredOff)
	}
	if t.Failed() {
		t.Logf("console end:\n%s", consoleTail(console))
	}
}

// checkDiskAfter reads the guest's file back from the image and checks
// that the guest left the filesystem clean.
func checkDiskAfter(t *testing.T, r *virtioRun) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cat := exec.Command("debugfs", "-R", "cat "+writtenName, r.disk)
	cat.Stdout, cat.Stderr = &stdout, &stderr
	if err := cat.Run(); err != nil {
		t.Fatalf("%s: %v: %s", cat, err, stderr.String())
	}
	if !bytes.Equal(stdout.Bytes(), r.written) {
		t.Errorf("%s on the disk after power-off = %q, want %q (debugfs said: %s)", writtenName, stdout.Bytes(), r.written, stderr.String())
	}
	if out, err := exec.Command("e2fsck", "-fn", r.disk).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn after the guest unmounted: %v\n%s", err, out)
	}
}

// requireVirtioHost fails or skips, saying why, unless the host has what
// the scenario needs: root for network namespaces and TAP devices, and
// e2fsprogs and iproute2.
func requireVirtioHost(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("VIRTIO TIER SKIPPED: needs root for a network namespace and a TAP device")
	}
	for _, tool := range []string{"mkfs.ext4", "debugfs", "e2fsck", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: run `make deps` (installs Debian's e2fsprogs and iproute2)", tool)
		}
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("VIRTIO TIER SKIPPED: no TUN/TAP on this host: %v", err)
	}
}

// virtioGuest returns Debian's cloud kernel and an initramfs with guestinit
// and the modules for virtio disks and NICs. Without a way to download the
// kernel it skips, loudly.
func virtioGuest(t *testing.T) (images.Kernel, string) {
	t.Helper()
	return debianGuest(t, func(ctx context.Context, cache string, k images.Kernel) (string, error) {
		return images.GuestinitInitramfsWithModules(ctx, cache, k, images.GuestModules())
	})
}

// makeExt4 returns a new 32 MiB ext4 image holding files.
func makeExt4(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	for name, data := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(dir, "disk.ext4")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-L", "vmmtest", "-d", root, img, "32M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	return img
}

// pingInNetns sends ICMP echo requests to addr from inside ns, one every
// half second, until one is answered or timeout passes, and returns the
// round trip of the answered one.
func pingInNetns(ns string, addr netip.Addr, timeout time.Duration) (time.Duration, error) {
	var rtt time.Duration
	err := inNetns(ns, func() error {
		conn, err := net.ListenPacket("ip4:icmp", "0.0.0.0")
		if err != nil {
			return err
		}
		defer conn.Close()
		deadline := time.Now().Add(timeout)
		id := uint16(os.Getpid())
		for seq := uint16(1); time.Now().Before(deadline); seq++ {
			sent := time.Now()
			if _, err := conn.WriteTo(icmpEcho(id, seq), &net.IPAddr{IP: addr.AsSlice()}); err != nil {
				return err
			}
			wait := sent.Add(500 * time.Millisecond)
			if deadline.Before(wait) {
				wait = deadline
			}
			if waitEchoReply(conn, id, seq, wait) {
				rtt = time.Since(sent)
				return nil
			}
		}
		return fmt.Errorf("no echo reply within %v", timeout)
	})
	return rtt, err
}

// icmpEcho is an ICMP echo request (RFC 792) with a short payload.
func icmpEcho(id, seq uint16) []byte {
	b := append([]byte{8, 0, 0, 0, 0, 0, 0, 0}, "vmm-e2e-ping"...)
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], seq)
	var sum uint32
	for i := 0; i < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1]) // even length, so no odd byte
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(b[2:], ^uint16(sum))
	return b
}

// waitEchoReply reads ICMP messages (the IPv4 header already stripped)
// until the echo reply for id and seq arrives or deadline passes.
func waitEchoReply(conn net.PacketConn, id, seq uint16, deadline time.Time) bool {
	conn.SetReadDeadline(deadline)
	buf := make([]byte, 1500)
	for {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			return false
		}
		m := buf[:n]
		if n >= 8 && m[0] == 0 && binary.BigEndian.Uint16(m[4:]) == id && binary.BigEndian.Uint16(m[6:]) == seq {
			return true
		}
	}
}

// dialAttempt bounds one TCP connect in fetchInNetns.
const dialAttempt = 2 * time.Second

// fetchInNetns connects to addr from inside ns and reads until the guest
// closes the connection.
func fetchInNetns(ns string, addr netip.AddrPort, timeout time.Duration) ([]byte, error) {
	var got []byte
	err := inNetns(ns, func() error {
		// A dial can fail for a moment after the guest answered a ping (a
		// neighbour entry being revalidated gives EHOSTUNREACH): retry
		// until the deadline. Each attempt is short: a SYN lost while an
		// emulated guest is slow is otherwise resent only after the
		// kernel's backoff (1, 3, 7, 15, 31 s), past the deadline.
		deadline := time.Now().Add(timeout)
		dial := func() (net.Conn, error) {
			return net.DialTimeout("tcp4", addr.String(), max(min(dialAttempt, time.Until(deadline)), time.Millisecond)) // 0 would mean no timeout
		}
		conn, err := dial()
		for err != nil && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
			conn, err = dial()
		}
		if err != nil {
			return err
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(timeout))
		got, err = io.ReadAll(conn)
		return err
	})
	return got, err
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// guestProc is a VM process (QEMU or vmm) started inside a network
// namespace, with its console collected.
type guestProc struct {
	cmd     *exec.Cmd
	console *consoleLog
	done    chan struct{} // closed once the process has exited
	err     error         // how it exited; valid after done
}

// startInNetns runs argv inside ns with `ip netns exec` (which execs it,
// so the process is the VM itself). It is killed when the test ends if it
// is still running, and when the test process dies.
func startInNetns(t *testing.T, ns, prog string, args ...string) *guestProc {
	t.Helper()
	return startGuestProc(t, exec.Command("ip", append([]string{"netns", "exec", ns, prog}, args...)...))
}

// startGuestProc starts cmd with its stdout and stderr as the console. It
// is killed when the test ends if it is still running, and when the test
// process dies.
func startGuestProc(t *testing.T, cmd *exec.Cmd) *guestProc {
	t.Helper()
	g := &guestProc{cmd: cmd, console: newConsoleLog(), done: make(chan struct{})}
	g.cmd.Stdout, g.cmd.Stderr = g.console, g.console
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	g.cmd.WaitDelay = time.Second
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", g.cmd, err)
	}
	go func() {
		g.err = g.cmd.Wait()
		g.console.close()
		close(g.done)
	}()
	t.Cleanup(func() {
		select {
		case <-g.done:
		default:
			g.cmd.Process.Kill()
			<-g.done
		}
	})
	return g
}

// expectResult waits for guestinit's result line for name and fails the
// test unless it arrives in time and passed.
func (g *guestProc) expectResult(t *testing.T, name string, timeout time.Duration) protocol.Result {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out, changed, closed := g.console.snapshot()
		for _, r := range protocol.ParseResults(out) {
			if r.Name == name && r.OK() {
				return r
			}
			if r.Name == name || r.Name == protocol.ResultConfig {
				t.Fatalf("guest: %s; console end:\n%s", r, consoleTail(out))
			}
		}
		if closed {
			<-g.done
			t.Fatalf("%s exited (%v) before the guest's %s result; console end:\n%s", g.cmd.Args[4], g.err, name, consoleTail(out))
		}
		select {
		case <-changed:
		case <-time.After(time.Until(deadline)):
			t.Fatalf("no %s result from the guest within %v; console end:\n%s", name, timeout, consoleTail(out))
		}
	}
}

// wait waits up to timeout for the VM to exit and returns an error unless
// it exited with status 0.
func (g *guestProc) wait(timeout time.Duration) error {
	select {
	case <-g.done:
	case <-time.After(timeout):
		return fmt.Errorf("%s still running %v after the guest served its file", g.cmd.Args[4], timeout)
	}
	if g.err != nil {
		return fmt.Errorf("%s: %w", g.cmd.Args[4], g.err)
	}
	return nil
}

// consoleLog collects console output and wakes anyone waiting for more.
type consoleLog struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced on every write and on close
	closed  bool
}

func newConsoleLog() *consoleLog { return &consoleLog{changed: make(chan struct{})} }

func (c *consoleLog) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	close(c.changed)
	c.changed = make(chan struct{})
	return len(p), nil
}

func (c *consoleLog) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	close(c.changed)
	c.changed = make(chan struct{})
}

// snapshot returns the output so far, a channel closed on the next change,
// and whether the output has ended.
func (c *consoleLog) snapshot() (string, <-chan struct{}, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String(), c.changed, c.closed
}

func (c *consoleLog) String() string {
	s, _, _ := c.snapshot()
	return s
}
