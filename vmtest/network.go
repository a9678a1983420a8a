package vmtest

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/vmm-dev/vmm/vmm/netswitch"
)

// Network is a switched L2 segment for the test's VMs: a switch in the
// test process that their vmm processes join (vmm --net socket=PATH). It
// needs no root and touches no host interface.
type Network struct {
	t    testing.TB
	sw   *netswitch.Switch
	path string
	id   byte

	mu   sync.Mutex
	next int
}

var networkIDs struct {
	sync.Mutex
	n byte
}

// NewNetwork starts a segment; it is torn down when the test ends.
func NewNetwork(t testing.TB) *Network {
	t.Helper()
	// A short directory: unix socket paths are limited to 107 bytes, and
	// t.TempDir's include the test's name.
	dir, err := os.MkdirTemp("", "vmtest-net-")
	if err != nil {
		t.Fatalf("vmtest: %v", err)
	}
	path := filepath.Join(dir, "switch.sock")
	sw, err := netswitch.New(path)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("vmtest: start the network's switch: %v", err)
	}
	t.Cleanup(func() {
		sw.Close()
		os.RemoveAll(dir)
	})
	networkIDs.Lock()
	networkIDs.n++
	id := networkIDs.n
	networkIDs.Unlock()
	return &Network{t: t, sw: sw, path: path, id: id}
}

// NIC is a VM's device on a Network.
type NIC struct {
	Network *Network
	MAC     string
	// IP is the guest's address and prefix length, e.g. 10.0.0.2/24; vmm
	// run sets it on an image VM's first NIC.
	IP string
}

// NIC returns a device on n with the next free MAC and, for image VMs,
// the next address of 10.90.ID.0/24 (.2 first).
func (n *Network) NIC() NIC {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.next++
	addr := netip.AddrFrom4([4]byte{10, 90, n.id, byte(n.next + 1)})
	return NIC{
		Network: n,
		MAC:     fmt.Sprintf("02:76:74:%02x:%02x:00", n.id, n.next),
		IP:      netip.PrefixFrom(addr, 24).String(),
	}
}

// Addr is the IP address of nic, without the prefix length.
func (nic NIC) Addr() string {
	p, err := netip.ParsePrefix(nic.IP)
	if err != nil {
		return ""
	}
	return p.Addr().String()
}

// Stats are the switch's counters: frames forwarded, flooded and dropped
// per port.
func (n *Network) Stats() netswitch.Stats { return n.sw.Stats() }
