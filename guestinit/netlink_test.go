package guestinit

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/vmm-dev/vmm/guestinit/protocol"
	"golang.org/x/sys/unix"
)

// The golden messages are little-endian, as the amd64 guest is.
func requireLittleEndian(t *testing.T) {
	t.Helper()
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("golden netlink messages are little-endian")
	}
}

func TestRtnetlinkRequests_Golden(t *testing.T) {
	requireLittleEndian(t)
	for _, tt := range []struct {
		name string
		got  []byte
		want string
	}{
		{
			"RTM_NEWADDR 10.0.2.15/24 on index 3",
			newAddrRequest(7, 3, netip.MustParsePrefix("10.0.2.15/24")),
			// nlmsghdr: len 40, RTM_NEWADDR, REQUEST|ACK|REPLACE|CREATE, seq 7, pid 0
			"28000000" + "1400" + "0505" + "07000000" + "00000000" +
				// ifaddrmsg: AF_INET, /24, flags 0, scope universe, index 3
				"02180000" + "03000000" +
				// IFA_LOCAL, IFA_ADDRESS
				"08000200" + "0a00020f" + "08000100" + "0a00020f",
		},
		{
			"RTM_NEWLINK up on index 3",
			linkUpRequest(8, 3),
			"20000000" + "1000" + "0500" + "08000000" + "00000000" +
				// ifinfomsg: AF_UNSPEC, type 0, index 3, flags IFF_UP, change IFF_UP
				"00000000" + "03000000" + "01000000" + "01000000",
		},
		{
			"RTM_NEWROUTE default via 10.0.2.1 on index 3",
			defaultRouteRequest(9, 3, netip.MustParseAddr("10.0.2.1")),
			"2c000000" + "1800" + "0505" + "09000000" + "00000000" +
				// rtmsg: AF_INET, dst/src len 0, tos 0, main table, boot, universe, unicast; flags 0
				"02000000" + "fe030001" + "00000000" +
				// RTA_GATEWAY, RTA_OIF
				"08000500" + "0a000201" + "08000400" + "03000000",
		},
	} {
		if got := hex.EncodeToString(tt.got); got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, tt.want)
		}
	}
}

func TestAppendAttr_PadsToFourBytes(t *testing.T) {
	requireLittleEndian(t)
	if got, want := hex.EncodeToString(appendAttr(nil, 3, []byte("eth0\x00"))), "0900030065746830000000"+"00"; got != want {
		t.Errorf("appendAttr = %s, want %s", got, want)
	}
}

// nlError is an NLMSG_ERROR reply to seq carrying errno (0: an ack).
func nlError(seq uint32, errno int32) []byte {
	b := make([]byte, unix.SizeofNlMsghdr+4+unix.SizeofNlMsghdr)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], unix.NLMSG_ERROR)
	ne.PutUint32(b[8:], seq)
	ne.PutUint32(b[16:], uint32(errno))
	return b
}

func TestParseAck(t *testing.T) {
	if err := parseAck(nlError(5, 0), 5); err != nil {
		t.Errorf("ack: %v", err)
	}
	if err := parseAck(nlError(5, -int32(unix.EEXIST)), 5); !errors.Is(err, unix.EEXIST) {
		t.Errorf("EEXIST reply: %v", err)
	}
	if err := parseAck(append(nlError(4, -int32(unix.EPERM)), nlError(5, 0)...), 5); err != nil {
		t.Errorf("stale reply then ack: %v", err)
	}
	if err := parseAck(nlError(4, 0), 5); err != errNoAck {
		t.Errorf("reply to another request: %v, want errNoAck", err)
	}
	if err := parseAck(nlError(5, 0)[:20], 5); err == nil || err == errNoAck {
		t.Errorf("truncated reply: %v, want a length error", err)
	}
}

// TestConfigureIPv4_InFreshNetns runs the real netlink requests against
// this kernel's loopback interface, in a network namespace of its own.
func TestConfigureIPv4_InFreshNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	errc := make(chan error, 1)
	go func() {
		// The thread is left locked, so it dies with the goroutine and its
		// namespace never serves another goroutine.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- checkLoopbackConfigured()
	}()
	if err := <-errc; errors.Is(err, unix.EPERM) {
		t.Skipf("no network namespace here: %v", err)
	} else if err != nil {
		t.Fatal(err)
	}
}

func checkLoopbackConfigured() error {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		return err
	}
	n := protocol.NetCheck{Interface: "lo", Addr: netip.MustParsePrefix("10.9.8.7/24"), Gateway: netip.MustParseAddr("10.9.8.1")}
	if err := configureIPv4(lo.Index, n); err != nil {
		return err
	}
	if lo, err = net.InterfaceByName("lo"); err != nil {
		return err
	}
	addrs, err := lo.Addrs()
	if err != nil {
		return err
	}
	var got []string
	for _, a := range addrs {
		got = append(got, a.String())
	}
	if lo.Flags&net.FlagUp == 0 || !strings.Contains(strings.Join(got, " "), "10.9.8.7/24") {
		return errors.New("lo after configureIPv4: flags " + lo.Flags.String() + ", addresses " + strings.Join(got, " "))
	}
	route, err := os.ReadFile("/proc/thread-self/net/route")
	if err != nil {
		return err
	}
	// Destination 0.0.0.0, gateway 10.9.8.1 (little-endian hex).
	if !strings.Contains(string(route), "lo\t00000000\t0108090A") {
		return errors.New("no default route via 10.9.8.1 in the thread's /proc/net/route:\n" + string(route))
	}
	return nil
}
