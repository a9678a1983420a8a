package protocol

import (
	"fmt"
	"net/netip"
	"strings"
)

// HostEntry is one --add-host line of /etc/hosts.
type HostEntry struct {
	Name string     `json:"name"`
	Addr netip.Addr `json:"addr"`
}

// HostsPath and ResolvConfPath are the files guestinit writes for the
// workload, with HostsFile and ResolvConf.
const (
	HostsPath      = "/etc/hosts"
	ResolvConfPath = "/etc/resolv.conf"
)

// HostsFile returns /etc/hosts for a guest named hostname whose address is
// addr (the zero Addr when it has none), in docker's layout
// (libnetwork/etchosts): the loopback and IPv6 multicast names, the extra
// entries in order, then the guest's own line. A hostname with dots is
// written as itself followed by its first label, as docker does for a
// fully qualified name.
func HostsFile(hostname string, addr netip.Addr, extra []HostEntry) []byte {
	var b strings.Builder
	line := func(addr any, names string) { fmt.Fprintf(&b, "%s\t%s\n", addr, names) }
	// Spelled as docker spells them, so the file matches docker's byte for byte.
	for _, d := range [][2]string{
		{"127.0.0.1", "localhost"},
		{"::1", "localhost ip6-localhost ip6-loopback"},
		{"fe00::0", "ip6-localnet"},
		{"ff00::0", "ip6-mcastprefix"},
		{"ff02::1", "ip6-allnodes"},
		{"ff02::2", "ip6-allrouters"},
	} {
		line(d[0], d[1])
	}
	for _, e := range extra {
		line(e.Addr, e.Name)
	}
	if hostname == "" {
		return []byte(b.String())
	}
	names := hostname
	if short, _, fqdn := strings.Cut(hostname, "."); fqdn && short != "" {
		names += " " + short
	}
	// Docker leaves the hostname out when there is no address, and programs
	// that resolve their own name (sudo, Java's getLocalHost) then stall or
	// fail; Debian maps it to 127.0.1.1 for the same reason.
	if !addr.IsValid() {
		addr = netip.AddrFrom4([4]byte{127, 0, 1, 1})
	}
	line(addr, names)
	return []byte(b.String())
}
