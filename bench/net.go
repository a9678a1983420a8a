package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The virtio-net suite: a guest's frames through each VMM's virtio-net
// over PCI and a TAP. The bench makes a network namespace holding only the
// TAP (and loopback, IPv6 off), so no frame leaves it; vmm and QEMU run
// inside it in turn on the same TAP, and the bench's AF_PACKET socket on
// the TAP counts the frames the benchnet micro-guest sends and sends it
// the frames it receives. QEMU runs q35 with a modern-only virtio-net-pci
// on a tap netdev (no vhost: both VMMs move frames in user space).

func init() { register(suite{name: "virtio-net", run: netSuite, baseline: true}) }

const (
	// netN is the frames per phase: a few tenths of a second each.
	netN = 5000
	// netFrame is the frame size benchnet sends and expects: a full
	// Ethernet payload of 1500 bytes.
	netFrame = 1514
	// netEtherType is the IEEE local experimental EtherType benchnet uses.
	netEtherType = 0x88b5
	netTAP       = "vmmbench0"
)

var (
	netGuestMAC = [6]byte{0x02, 0, 0, 0, 0, 0x02}
	netHostMAC  = [6]byte{0x02, 0, 0, 0, 0, 0x01}
)

func netSuite(e *Env) ([]Result, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the virtio-net suite needs root: it makes a network namespace and a TAP in it")
	}
	kernel, err := e.Guest("benchnet")
	if err != nil {
		return nil, err
	}
	ns, err := newBenchNetns(netTAP, 2*netN)
	if err != nil {
		return nil, err
	}
	defer ns.close()
	ps, err := openPacketSocket(ns.name, netTAP)
	if err != nil {
		return nil, err
	}
	defer ps.close()

	cmdline := "n=" + strconv.Itoa(netN)
	mac := net.HardwareAddr(netGuestMAC[:]).String()
	run := func(argv []string) guestCmd {
		return guestCmd{Argv: argv, NetNS: ns.name, OnMark: ps.onMark}
	}
	e.Logf("virtio-net: benchnet n=%d, %d-byte frames, under vmm and QEMU q35 on TAP %s in namespace %s", netN, netFrame, netTAP, ns.name)
	rs, err := guestSuite{
		Suite: "virtio-net", Guest: "benchnet", Peer: peerQ35,
		VMM: func() guestCmd {
			return run(vmmBoot(e, kernel, cmdline, "--net", "tap="+netTAP+",mac="+mac))
		},
		PeerCmd: func() guestCmd {
			return run(qemuBoot(e, "q35", kernel, cmdline,
				"-netdev", "tap,id=n,ifname="+netTAP+",script=no,downscript=no",
				"-device", "virtio-net-pci,netdev=n,disable-legacy=on,mac="+mac))
		},
		Metrics: []guestMetric{
			{Phase: "tx", Metric: fmt.Sprintf("guest transmits %d-byte frames to a TAP", netFrame), Unit: "frames/s", Value: phase.Rate, Per: "frame", AtLeast: peerRateTarget},
			{Phase: "rx", Metric: fmt.Sprintf("guest receives %d-byte frames from a TAP", netFrame), Unit: "frames/s", Value: phase.Rate, Per: "frame", AtLeast: peerRateTarget},
		},
	}.run(e)
	if err != nil {
		return nil, err
	}
	if got, want := ps.fromGuest.Load(), int64(2*(e.Runs+1)*netN); got < want {
		e.Logf("virtio-net: the host saw %d of the guests' %d frames (the packet socket's buffer overflowed?)", got, want)
	}
	return rs, nil
}

// benchNetns is a network namespace the bench made, with one TAP in it.
type benchNetns struct{ name string }

// newBenchNetns makes namespace vmmbench-<random> with loopback up, IPv6
// off (no neighbour discovery of its own on the TAP) and TAP tap up, whose
// queue holds qlen frames: a sender never waits for the VMM reading the
// TAP, so frames beyond the queue would be dropped.
func newBenchNetns(tap string, qlen int) (*benchNetns, error) {
	var b [4]byte
	rand.Read(b[:])
	ns := &benchNetns{name: "vmmbench-" + hex.EncodeToString(b[:])}
	if err := ipCmd("netns", "add", ns.name); err != nil {
		return nil, err
	}
	for _, args := range [][]string{
		{"netns", "exec", ns.name, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1", "net.ipv6.conf.all.disable_ipv6=1"},
		{"-n", ns.name, "link", "set", "lo", "up"},
		{"-n", ns.name, "tuntap", "add", "dev", tap, "mode", "tap"},
		{"-n", ns.name, "link", "set", tap, "txqueuelen", strconv.Itoa(qlen), "up"},
	} {
		if err := ipCmd(args...); err != nil {
			ns.close()
			return nil, err
		}
	}
	return ns, nil
}

// close deletes the namespace and the TAP with it.
func (ns *benchNetns) close() { ipCmd("netns", "delete", ns.name) }

func ipCmd(args ...string) error {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// packetSocket is an AF_PACKET socket on the TAP: it counts the frames
// the guest sends and sends the guest the frames it is to receive.
type packetSocket struct {
	fd      int
	ifindex int
	frame   []byte // host to guest, netFrame bytes

	fromGuest atomic.Int64 // test frames from the guest's MAC, all runs
	stop      atomic.Bool
	done      chan struct{} // closed when the counter has stopped
	sendErr   chan error    // the last sender's outcome
}

// openPacketSocket opens the socket inside namespace ns (it stays there
// for life) and starts counting.
func openPacketSocket(ns, iface string) (*packetSocket, error) {
	ps := &packetSocket{done: make(chan struct{}), sendErr: make(chan error, 1)}
	errc := make(chan error, 1)
	go func() {
		// The thread stays locked and in ns: Go ends it with the
		// goroutine instead of reusing it elsewhere.
		runtime.LockOSThread()
		errc <- ps.open(ns, iface)
	}()
	if err := <-errc; err != nil {
		return nil, fmt.Errorf("packet socket on %s in %s: %w", iface, ns, err)
	}
	ps.frame = make([]byte, netFrame)
	copy(ps.frame, netGuestMAC[:])
	copy(ps.frame[6:], netHostMAC[:])
	ps.frame[12], ps.frame[13] = netEtherType>>8, netEtherType&0xff
	for i := 14; i < netFrame; i++ {
		ps.frame[i] = byte(i)
	}
	go ps.count()
	return ps, nil
}

func (ps *packetSocket) open(ns, iface string) error {
	f, err := os.Open("/run/netns/" + ns)
	if err != nil {
		return err
	}
	err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
	f.Close()
	if err != nil {
		return fmt.Errorf("setns: %w", err)
	}
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return err
	}
	// A receive buffer for a few thousand frames, and a timeout so the
	// counter notices close.
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20)
	tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return err
	}
	ps.fd, ps.ifindex = fd, ifi.Index
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// count counts test frames from the guest until close.
func (ps *packetSocket) count() {
	defer close(ps.done)
	buf := make([]byte, 2048)
	for !ps.stop.Load() {
		n, _, err := unix.Recvfrom(ps.fd, buf, 0)
		if err != nil || n < 14 {
			continue // EAGAIN at the timeout, EINTR
		}
		if [6]byte(buf[6:12]) == netGuestMAC && int(buf[12])<<8|int(buf[13]) == netEtherType {
			ps.fromGuest.Add(1)
		}
	}
}

// onMark starts sending the guest its frames when it is ready for them,
// and checks at the end of the receive phase that the sending went well.
func (ps *packetSocket) onMark(m mark) error {
	if m.Phase != "rx" {
		return nil
	}
	if !m.End {
		go func() { ps.sendErr <- ps.send(netN) }()
		return nil
	}
	return <-ps.sendErr
}

// send sends the guest n frames. The TAP's queue holds them all, so the
// guest takes them at its own pace.
func (ps *packetSocket) send(n int) error {
	to := &unix.SockaddrLinklayer{Ifindex: ps.ifindex, Halen: 6}
	for i := range n {
		if err := unix.Sendto(ps.fd, ps.frame, 0, to); err != nil {
			return fmt.Errorf("send frame %d to the guest: %w", i, err)
		}
	}
	return nil
}

func (ps *packetSocket) close() {
	ps.stop.Store(true)
	<-ps.done
	unix.Close(ps.fd)
}
