package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmm-dev/vmm/vmm"
	"github.com/vmm-dev/vmm/vmtest"
)

// packetSocket is an AF_PACKET socket bound to one interface: it sees every
// frame the interface sends or receives and can send frames out of it.
type packetSocket struct {
	fd      int
	ifindex int
}

func newPacketSocket(t *testing.T, ns, iface string) *packetSocket {
	t.Helper()
	var ps *packetSocket
	err := inNetns(ns, func() error {
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return err
		}
		ps = &packetSocket{fd: fd, ifindex: ifi.Index}
		return nil
	})
	if err != nil {
		t.Fatalf("packet socket on %s in %s: %v", iface, ns, err)
	}
	t.Cleanup(func() { unix.Close(ps.fd) })
	return ps
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// recvType returns the next frame of EtherType typ, waiting up to timeout.
func (ps *packetSocket) recvType(typ uint16, timeout time.Duration) ([]byte, error) {
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 65536)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil, fmt.Errorf("no frame of type %#04x in %v", typ, timeout)
		}
		tv := unix.NsecToTimeval(left.Nanoseconds())
		unix.SetsockoptTimeval(ps.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		n, _, err := unix.Recvfrom(ps.fd, buf, 0)
		if err != nil && err != unix.EAGAIN && err != unix.EINTR {
			return nil, err
		}
		if n >= 14 && uint16(buf[12])<<8|uint16(buf[13]) == typ {
			return bytes.Clone(buf[:n]), nil
		}
	}
}

func (ps *packetSocket) send(frame []byte) error {
	return unix.Sendto(ps.fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: ps.ifindex, Halen: 6})
}

// TestVirtio_NetTAP has a guest driver send one frame through virtio-net
// and a TAP, which the test reads from the TAP's interface byte for byte,
// then receive the frame the test sends into the interface.
func TestVirtio_NetTAP(t *testing.T) {
	kernel := guest(t, "virtionet")
	ns := newNetns(t, "tap0", "")
	ps := newPacketSocket(t, ns, "tap0")

	guestMAC := []byte{0x02, 0, 0, 0, 0, 0x02}
	hostMAC := []byte{0x02, 0, 0, 0, 0, 0x01}
	vm := vmtest.Start(t, vmtest.Config{
		Kernel: kernel, Memory: "32M", NetNS: ns,
		Args: []string{"--net", "tap=tap0,mac=02:00:00:00:00:02", "--rng=false"},
	})
	vm.Expect(`virtio-net: mac 02:00:00:00:00:02\n`, guestTimeout)

	got, err := ps.recvType(0x88b5, guestTimeout)
	if err != nil {
		t.Fatalf("frame from the guest: %v; console:\n%s", err, vm.Console())
	}
	want := append(append(append(bytes.Clone(hostMAC), guestMAC...), 0x88, 0xb5), "hello from the guest"...)
	if !bytes.Equal(got, want) {
		t.Errorf("frame on the TAP:\n% x\nwant:\n% x", got, want)
	}

	vm.Expect(`virtio-net: rx ready\n`, guestTimeout)
	frame := append(append(append(bytes.Clone(guestMAC), hostMAC...), 0x88, 0xb5), "hello from the host"...)
	sendWhenUp(t, ps, frame)
	vm.Expect(`virtio-net: got 33 bytes from 02:00:00:00:00:01 num_buffers 1: hello from the host\n`, guestTimeout)
	if code := vm.Wait(guestTimeout); code != vmm.StatusGuestOff {
		t.Errorf("exit status %d, want %d; stderr:\n%s", code, vmm.StatusGuestOff, vm.Stderr())
	}
}

// TestVirtio_NetTAP_Errors: a TAP the VMM may not open, or a malformed
// --net, is a clear error before the guest starts.
func TestVirtio_NetTAP_Errors(t *testing.T) {
	kernel := guest(t, "virtionet")
	for _, tc := range []struct {
		arg, want string
	}{
		{"tap=", "--net"},
		{"tap=tap0,mac=zz:00:00:00:00:01", "mac"},
		{"tap=tap0,mac=01:00:00:00:00:01", "multicast"},
		{"user", "--net"},
		{"tap=this-name-is-far-too-long-for-linux", "too long"},
	} {
		res := vmtest.Run(t, vmtest.Config{Kernel: kernel, Memory: "32M", Args: []string{"--net", tc.arg}}, guestTimeout)
		if res.Code == vmm.StatusGuestOff || !strings.Contains(res.Stderr, tc.want) || res.Console != "" {
			t.Errorf("--net %s: status %d, stderr %q, console %q; want a failure mentioning %q before the guest runs",
				tc.arg, res.Code, res.Stderr, res.Console, tc.want)
		}
	}
}

// TestVirtio_NetTAP_Busy: a TAP another process holds is refused with a
// message that says so, before the guest runs.
func TestVirtio_NetTAP_Busy(t *testing.T) {
	kernel := guest(t, "virtionet")
	ns := newNetns(t, "tap0", "")
	err := inNetns(ns, func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		t.Cleanup(func() { unix.Close(fd) })
		ifr, err := unix.NewIfreq("tap0")
		if err != nil {
			return err
		}
		ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
		return unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
	})
	if err != nil {
		t.Fatalf("hold tap0: %v", err)
	}
	res := vmtest.Run(t, vmtest.Config{Kernel: kernel, Memory: "32M", NetNS: ns, Args: []string{"--net", "tap=tap0"}}, guestTimeout)
	if res.Code != vmm.StatusSetupError || !strings.Contains(res.Stderr, "TAP tap0: in use by another process") || res.Console != "" {
		t.Errorf("status %d, stderr %q, console %q; want %d and the TAP named as busy", res.Code, res.Stderr, res.Console, vmm.StatusSetupError)
	}
}

// TestVirtio_NetTAP_DownThenUp: a TAP that is down drops the guest's frame
// (a write to it fails) without wedging the device: once the TAP is up
// again, a frame from the host still reaches the guest.
func TestVirtio_NetTAP_DownThenUp(t *testing.T) {
	kernel := guest(t, "virtionet")
	ns := newNetns(t, "tap0", "")
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "tap0", "down").CombinedOutput(); err != nil {
		t.Fatalf("ip link set tap0 down: %v\n%s", err, out)
	}
	ps := newPacketSocket(t, ns, "tap0")
	vm := vmtest.Start(t, vmtest.Config{
		Kernel: kernel, Memory: "32M", NetNS: ns,
		Args: []string{"--net", "tap=tap0,mac=02:00:00:00:00:02", "--rng=false"},
	})
	vm.Expect(`virtio-net: sent\n`, guestTimeout) // the frame was taken, and dropped
	vm.Expect(`virtio-net: rx ready\n`, guestTimeout)
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "tap0", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set tap0 up: %v\n%s", err, out)
	}
	guestMAC := []byte{0x02, 0, 0, 0, 0, 0x02}
	hostMAC := []byte{0x02, 0, 0, 0, 0, 0x01}
	frame := append(append(append(bytes.Clone(guestMAC), hostMAC...), 0x88, 0xb5), "hello from the host"...)
	sendWhenUp(t, ps, frame)
	vm.Expect(`virtio-net: got 33 bytes from 02:00:00:00:00:01 num_buffers 1: hello from the host\n`, guestTimeout)
	if code := vm.Wait(guestTimeout); code != vmm.StatusGuestOff {
		t.Errorf("exit status %d, want %d; stderr:\n%s", code, vmm.StatusGuestOff, vm.Stderr())
	}
}

// sendWhenUp sends frame into the TAP, retrying for a moment: a link just
// set up reports ENETDOWN until the kernel has brought it up.
func sendWhenUp(t *testing.T, ps *packetSocket, frame []byte) {
	t.Helper()
	err := ps.send(frame)
	for deadline := time.Now().Add(3 * time.Second); err != nil && time.Now().Before(deadline); err = ps.send(frame) {
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("send into tap0: %v", err)
	}
}
