package guestinit

import (
	"errors"
	"fmt"
	"net"

	"github.com/vmm-dev/vmm/guestinit/protocol"
)

// errIPv6 is returned for a run network with an IPv6 address: the
// rtnetlink requests here are IPv4 only so far.
var errIPv6 = errors.New("IPv6 addresses are not supported yet")

// configureNetwork brings loopback up (the kernel gives it 127.0.0.1 and
// ::1 by itself) and, when n is not nil, the guest's interface: its
// address, the link, and the default route via the gateway.
func configureNetwork(n *protocol.NetworkConfig) error {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	if err := linkUp(lo.Index, lo.Name); err != nil {
		return err
	}
	if n == nil {
		return nil
	}
	name := n.Interface
	if name == "" {
		name = protocol.DefaultInterface
	}
	if n.Addr.IsValid() && !n.Addr.Addr().Is4() {
		return fmt.Errorf("%s address %s: %w", name, n.Addr, errIPv6)
	}
	ifc, err := waitInterface(name, deviceWait)
	if err != nil {
		return err
	}
	if !n.Addr.IsValid() {
		return linkUp(ifc.Index, name)
	}
	return configureIPv4(ifc.Index, protocol.NetCheck{Interface: name, Addr: n.Addr, Gateway: n.Gateway})
}

func linkUp(index int, name string) error {
	nl, err := dialRtnetlink()
	if err != nil {
		return err
	}
	defer nl.Close()
	if err := nl.do(func(seq uint32) []byte { return linkUpRequest(seq, index) }); err != nil {
		return fmt.Errorf("bring %s up: %w", name, err)
	}
	return nil
}
