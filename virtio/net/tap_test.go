package net_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmm-dev/vmm/virtio/net"
	"github.com/vmm-dev/vmm/virtio/virtiotest"
)

// TestTAP_ReadPacket: a frame sent into tap0 comes out of the TAP with a
// 12-byte virtio-net header in front, asking for nothing.
func TestTAP_ReadPacket(t *testing.T) {
	env := newTAPEnv(t, true)
	f := frame(1000, 9)
	env.sendFrame(t, f)
	p := env.readTAP(t)
	if h, _ := net.ParseHeader(p); h.Flags&net.HdrFNeedsCsum != 0 || h.GSOType != net.GSONone {
		t.Errorf("header %+v", h)
	}
	if !bytes.Equal(p[net.HeaderSize:], f) {
		t.Errorf("frame differs: %d bytes, want %d", len(p)-net.HeaderSize, len(f))
	}
}

// TestTAP_WritePacket: a packet written to the TAP arrives in tap0 byte
// for byte, and the TAP reads the header: a partial checksum request is
// taken, an impossible one refused.
func TestTAP_WritePacket(t *testing.T) {
	env := newTAPEnv(t, true)
	f := frame(600, 2)
	if err := env.tap.WritePacket(packet(net.Header{}, f)); err != nil {
		t.Fatal(err)
	}
	if got := env.recvFrame(t); !bytes.Equal(got, f) {
		t.Errorf("tap0 got %d bytes, want the %d sent", len(got), len(f))
	}
	csum := net.Header{Flags: net.HdrFNeedsCsum, CsumStart: 34, CsumOffset: 6} // a UDP checksum behind IPv4
	if err := env.tap.WritePacket(packet(csum, f)); err != nil {
		t.Errorf("partial checksum refused: %v", err)
	}
	if got := env.recvFrame(t); !bytes.Equal(got, f) {
		t.Error("frame with a partial checksum changed")
	}
	bad := net.Header{Flags: net.HdrFNeedsCsum, CsumStart: 700, CsumOffset: 6} // past the frame
	if err := env.tap.WritePacket(packet(bad, f)); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("checksum past the frame: %v, want EINVAL", err)
	}
}

// TestTAP_WriteWhileDown: a TAP that is down refuses packets with EIO;
// the device drops and counts them.
func TestTAP_WriteWhileDown(t *testing.T) {
	env := newTAPEnv(t, false)
	if err := env.tap.WritePacket(packet(net.Header{}, frame(60, 0))); !errors.Is(err, syscall.EIO) {
		t.Errorf("write while down = %v, want EIO", err)
	}
	r := newRigOn(t, env.tap, 0)
	r.activate()
	r.sendTX(packet(net.Header{}, frame(60, 0)))
	r.notify(net.TXQueue)
	if s := r.dev.Stats(); s.TXDropBackend != 1 {
		t.Errorf("stats %+v", s)
	}
}

// TestTAP_SetOffloads: TUNSETOFFLOAD takes every combination the driver
// can negotiate.
func TestTAP_SetOffloads(t *testing.T) {
	env := newTAPEnv(t, true)
	all := net.FeatureGuestCsum | net.FeatureGuestTSO4 | net.FeatureGuestTSO6 | net.FeatureGuestECN
	for _, f := range []uint64{0, net.FeatureGuestCsum, all, all &^ net.FeatureGuestTSO4, net.FeatureGuestCsum | net.FeatureGuestECN} {
		if err := env.tap.SetOffloads(f); err != nil {
			t.Errorf("SetOffloads(%#x): %v", f, err)
		}
	}
}

// TestTAP_Deadline: the TAP's descriptor is in the runtime poller, so a
// read deadline wakes a waiting ReadPacket, and Close does too.
func TestTAP_Deadline(t *testing.T) {
	env := newTAPEnv(t, true)
	buf := make([]byte, net.MaxPacketSize)
	if _, err := env.tap.TryReadPacket(buf); !errors.Is(err, net.ErrNoPacket) {
		t.Fatalf("TryReadPacket with nothing queued = %v", err)
	}
	checkDeadlineAndClose(t, env.tap)
}

// TestTAP_Device: the device moves frames both ways through a real TAP.
func TestTAP_Device(t *testing.T) {
	env := newTAPEnv(t, true)
	r := newRigOn(t, env.tap, net.FeatureMrgRxbuf)
	// Buffers go in before Activate starts the receiver.
	var heads []uint16
	for range 4 {
		heads = append(heads, r.rx.AddChain(nil, []int{1024}))
	}
	r.activate()

	out := frame(1514, 4)
	r.sendTX(packet(net.Header{}, out), net.HeaderSize)
	r.notify(net.TXQueue)
	if got := env.recvFrame(t); !bytes.Equal(got, out) {
		t.Errorf("tap0 got %d bytes, want the %d-byte frame sent", len(got), len(out))
	}

	in := frame(1500, 8)
	env.sendFrame(t, in)
	virtiotest.WaitFor(t, "the receive interrupt", func() bool { return r.irq.count(net.RXQueue) > 0 })
	u := usedN(t, r.rx, 2)
	got := append(r.rx.Written(heads[0])[:u[0].Len], r.rx.Written(heads[1])[:u[1].Len]...)
	if !bytes.Equal(got, withNumBuffers(packet(net.Header{}, in), 2)) {
		t.Errorf("driver got % x..., want the frame over 2 buffers", got[:16])
	}
	r.reset()
}

// TestOpenTAP_Errors: each way of failing gives a *TAPError that says
// what to do.
func TestOpenTAP_Errors(t *testing.T) {
	requireTAP(t)
	ns := newNetns(t)
	ns.ip(t, "tuntap", "add", "tun0", "mode", "tun")
	open := func(name string) (err error) {
		ns.do(t, func() error {
			tap, e := net.OpenTAP(name)
			if e == nil {
				tap.Close()
			}
			err = e
			return nil
		})
		return err
	}
	for _, name := range []string{"", "a-name-too-long-x", "a/b", "a:b", "a b", ".."} {
		if err := open(name); !errors.Is(err, net.ErrTAPName) {
			t.Errorf("OpenTAP(%q) = %v, want ErrTAPName", name, err)
		}
	}
	if err := open("tun0"); !errors.Is(err, net.ErrNotTAP) {
		t.Errorf("OpenTAP on a TUN = %v, want ErrNotTAP", err)
	}

	var first *net.TAP
	ns.do(t, func() (err error) {
		first, err = net.OpenTAP("tap0")
		return err
	})
	defer first.Close()
	err := open("tap0")
	var te *net.TAPError
	if !errors.Is(err, net.ErrTAPBusy) || !errors.As(err, &te) || te.Name != "tap0" {
		t.Errorf("second OpenTAP = %v, want a TAPError for tap0 with ErrTAPBusy", err)
	}
}

// TestOpenTAP_PermissionDenied: without CAP_NET_ADMIN, creating a TAP
// fails with advice on how to make one a user may open.
func TestOpenTAP_PermissionDenied(t *testing.T) {
	requireTAP(t)
	ns := newNetns(t)
	var err error
	ns.do(t, func() error {
		// The dropped capability stays with this thread: lock it once
		// more, never unlocked, so the thread ends with the goroutine.
		runtime.LockOSThread()
		if e := dropNetAdmin(); e != nil {
			return e
		}
		_, err = net.OpenTAP("tapx")
		return nil
	})
	if !errors.Is(err, net.ErrTAPPermission) || !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("OpenTAP without CAP_NET_ADMIN = %v, want ErrTAPPermission", err)
	}
	if want := "`ip tuntap add tapx mode tap user $USER`"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %s", err, want)
	}
}

// dropNetAdmin removes CAP_NET_ADMIN from the calling thread's effective
// capabilities.
func dropNetAdmin() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	data[0].Effective &^= 1 << unix.CAP_NET_ADMIN
	return unix.Capset(&hdr, &data[0])
}

// checkDeadlineAndClose: a backend's read deadline wakes a waiting
// ReadPacket (and TryReadPacket then fails the same way), and Close wakes
// one too, as the device's receiver relies on to stop.
func checkDeadlineAndClose(t *testing.T, b net.Backend) {
	t.Helper()
	buf := make([]byte, net.MaxPacketSize)
	errc := make(chan error, 1)
	go func() {
		_, err := b.ReadPacket(buf)
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond) // let it wait; the test passes either way
	if err := b.SetReadDeadline(time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("ReadPacket = %v, want ErrDeadlineExceeded", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("deadline did not wake ReadPacket")
	}
	if _, err := b.TryReadPacket(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("TryReadPacket past the deadline = %v", err)
	}
	b.SetReadDeadline(time.Time{})
	go func() {
		_, err := b.ReadPacket(buf)
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	b.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("ReadPacket after Close = %v, want ErrClosed", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Close did not wake ReadPacket")
	}
}
