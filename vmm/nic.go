package vmm

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"

	vnet "github.com/vmm-dev/vmm/virtio/net"
)

// NIC is a virtio-net device backed by a TAP interface or by a switch's
// socket: exactly one of TAP and Socket is set.
type NIC struct {
	// TAP names the interface: an existing TAP the VMM may attach to, or
	// one it creates (which needs CAP_NET_ADMIN).
	TAP string
	// Socket is the path of a switch's unix datagram socket
	// (vmm/netswitch), @name for an abstract one: the VM joins that
	// switch's L2 segment, with no privileges and no offloads.
	Socket string
	// MAC is the guest's address; nil picks a random locally administered
	// one.
	MAC net.HardwareAddr
}

// MaxNICs bounds the network devices of one machine.
const MaxNICs = 8

// ifNameMax is IFNAMSIZ less the terminating NUL.
const ifNameMax = 15

// ParseNIC reads a --net value: tap=NAME[,mac=XX:XX:XX:XX:XX:XX] or
// socket=PATH[,mac=XX:XX:XX:XX:XX:XX]. A PATH cannot hold a comma.
func ParseNIC(spec string) (NIC, error) {
	var n NIC
	usage := "use tap=NAME or socket=PATH, then [,mac=02:xx:xx:xx:xx:xx]"
	for i, field := range strings.Split(spec, ",") {
		key, val, ok := strings.Cut(field, "=")
		switch {
		case i == 0 && key != "tap" && key != "socket":
			return NIC{}, fmt.Errorf("%q: the backend comes first, tap=NAME or socket=PATH: %s", spec, usage)
		case !ok:
			return NIC{}, fmt.Errorf("%q: %q has no value: %s", spec, field, usage)
		case key == "tap" && i == 0:
			if err := checkIfName(val); err != nil {
				return NIC{}, fmt.Errorf("%q: %w", spec, err)
			}
			n.TAP = val
		case key == "socket" && i == 0:
			if err := checkSocketPath(val); err != nil {
				return NIC{}, fmt.Errorf("%q: %w", spec, err)
			}
			n.Socket = val
		case key == "mac":
			mac, err := parseMAC(val)
			if err != nil {
				return NIC{}, fmt.Errorf("%q: %w", spec, err)
			}
			n.MAC = mac
		default:
			return NIC{}, fmt.Errorf("%q: unknown option %q: %s", spec, key, usage)
		}
	}
	return n, nil
}

// check is Config.Validate's test of one NIC.
func (n NIC) check() error {
	switch {
	case n.TAP != "" && n.Socket != "":
		return fmt.Errorf("TAP %q and socket %q: give one backend, not both", n.TAP, n.Socket)
	case n.Socket != "":
		if err := checkSocketPath(n.Socket); err != nil {
			return err
		}
	default:
		if err := checkIfName(n.TAP); err != nil {
			return err
		}
	}
	if n.MAC != nil {
		return checkMAC(n.MAC)
	}
	return nil
}

// mac is the NIC's address, or a random locally administered one read
// from src; the socket backend needs it before the device exists, to
// register it.
func (n NIC) mac(src io.Reader) (vnet.MAC, error) {
	var mac vnet.MAC
	if n.MAC == nil {
		return vnet.RandomMAC(src)
	}
	copy(mac[:], n.MAC)
	return mac, nil
}

// sunPathMax is sun_path's 108 bytes less the terminating NUL.
const sunPathMax = 107

// checkSocketPath applies the rules for a unix socket address.
func checkSocketPath(path string) error {
	switch {
	case path == "":
		return fmt.Errorf("empty socket path")
	case len(path) > sunPathMax:
		return fmt.Errorf("socket path %q is too long: at most %d bytes (use a shorter directory)", path, sunPathMax)
	case strings.IndexByte(path, 0) >= 0:
		return fmt.Errorf("socket path %q has a NUL", path)
	}
	return nil
}

// checkIfName applies the kernel's rules for interface names
// (vnet.ValidIfName), saying which one name breaks.
func checkIfName(name string) error {
	switch {
	case vnet.ValidIfName(name):
		return nil
	case name == "":
		return fmt.Errorf("empty TAP name")
	case len(name) > ifNameMax:
		return fmt.Errorf("TAP name %q is too long: at most %d bytes", name, ifNameMax)
	case name == "." || name == "..":
		return fmt.Errorf("TAP name %q is not an interface name", name)
	}
	return fmt.Errorf("TAP name %q has a character interface names cannot have ('/', ':', white space or NUL)", name)
}

// parseMAC accepts a unicast, non-zero 48-bit address.
func parseMAC(s string) (net.HardwareAddr, error) {
	mac, err := net.ParseMAC(s)
	if err != nil || len(mac) != 6 {
		return nil, fmt.Errorf("mac %q: want six hex bytes, e.g. 02:00:00:00:00:01", s)
	}
	return mac, checkMAC(mac)
}

// checkMAC refuses addresses a NIC cannot have as its own: multicast
// (and broadcast) and the zero address.
func checkMAC(mac net.HardwareAddr) error {
	if len(mac) != 6 {
		return fmt.Errorf("mac %s: want six bytes", mac)
	}
	if mac[0]&1 != 0 {
		return fmt.Errorf("mac %s is a multicast address: the first byte must be even (e.g. 02:...)", mac)
	}
	if bytes.Equal(mac, make([]byte, 6)) {
		return fmt.Errorf("mac %s: the zero address is not a station address", mac)
	}
	return nil
}
