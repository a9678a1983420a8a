package protocol

import (
	"bufio"
	"bytes"
	"net/netip"
	"strings"
)

// DNSConfig is what the guest's /etc/resolv.conf says.
type DNSConfig struct {
	Nameservers []netip.Addr `json:"nameservers,omitempty"`
	Search      []string     `json:"search,omitempty"`
	Options     []string     `json:"options,omitempty"`
}

// defaultNameservers are docker's fallback (Google Public DNS) when the
// host has no nameserver a guest can reach.
func defaultNameservers(ipv6 bool) []netip.Addr {
	ns := []netip.Addr{netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("8.8.4.4")}
	if ipv6 {
		ns = append(ns, netip.MustParseAddr("2001:4860:4860::8888"), netip.MustParseAddr("2001:4860:4860::8844"))
	}
	return ns
}

// HostDNS derives a guest's DNS settings from the host's resolv.conf as
// docker does for a container on a bridge network: nameservers on
// loopback (127.0.0.0/8, ::1: systemd-resolved's 127.0.0.53, dnsmasq) are
// dropped because the guest's loopback is its own; so are IPv6 ones
// unless ipv6, and link-local ones with a zone, which names a host
// interface. When none is left, docker's defaults are used. search is
// the last search line's, as in glibc; options accumulate. A host on
// systemd-resolved should pass /run/systemd/resolve/resolv.conf, which
// lists the real upstream servers, as docker does.
func HostDNS(resolvConf []byte, ipv6 bool) DNSConfig {
	var c DNSConfig
	s := bufio.NewScanner(bytes.NewReader(resolvConf))
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) == 0 || f[0][0] == '#' || f[0][0] == ';' {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) < 2 {
				continue
			}
			a, err := netip.ParseAddr(f[1])
			if err == nil && !a.IsLoopback() && a.Zone() == "" && (ipv6 || a.Is4()) {
				c.Nameservers = append(c.Nameservers, a)
			}
		case "search":
			c.Search = append([]string(nil), f[1:]...)
		case "options":
			c.Options = append(c.Options, f[1:]...)
		}
	}
	if len(c.Nameservers) == 0 {
		c.Nameservers = defaultNameservers(ipv6)
	}
	return c
}

// ResolvConf returns /etc/resolv.conf for c, in the layout docker wrote
// before its embedded resolver: nameserver lines, then search, then
// options. A search list of just "." means none (docker's --dns-search .).
func ResolvConf(c DNSConfig) []byte {
	var b strings.Builder
	for _, a := range c.Nameservers {
		b.WriteString("nameserver " + a.String() + "\n")
	}
	if len(c.Search) > 0 && !(len(c.Search) == 1 && c.Search[0] == ".") {
		b.WriteString("search " + strings.Join(c.Search, " ") + "\n")
	}
	if len(c.Options) > 0 {
		b.WriteString("options " + strings.Join(c.Options, " ") + "\n")
	}
	return []byte(b.String())
}
