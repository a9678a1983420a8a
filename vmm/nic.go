package vmm

import (
	"bytes"
	"fmt"
	"net"
	"strings"

	vnet "github.com/vmm-dev/vmm/virtio/net"
)

// NIC is a virtio-net device backed by a TAP interface.
type NIC struct {
	// TAP names the interface: an existing TAP the VMM may attach to, or
	// one it creates (which needs CAP_NET_ADMIN).
	TAP string
	// MAC is the guest's address; nil picks a random locally administered
	// one.
	MAC net.HardwareAddr
}

// MaxNICs bounds the network devices of one machine.
const MaxNICs = 8

// ifNameMax is IFNAMSIZ less the terminating NUL.
const ifNameMax = 15

// ParseNIC reads a --net value: tap=NAME[,mac=XX:XX:XX:XX:XX:XX].
func ParseNIC(spec string) (NIC, error) {
	var n NIC
	usage := "use tap=NAME[,mac=02:xx:xx:xx:xx:xx]"
	for i, field := range strings.Split(spec, ",") {
		key, val, ok := strings.Cut(field, "=")
		switch {
		case i == 0 && key != "tap":
			return NIC{}, fmt.Errorf("%q: the only backend is a TAP: %s", spec, usage)
		case !ok:
			return NIC{}, fmt.Errorf("%q: %q has no value: %s", spec, field, usage)
		case key == "tap" && i == 0:
			if err := checkIfName(val); err != nil {
				return NIC{}, fmt.Errorf("%q: %w", spec, err)
			}
			n.TAP = val
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
