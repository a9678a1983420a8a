package protocol

import (
	"net/netip"
	"reflect"
	"testing"
)

func addrs(s ...string) []netip.Addr {
	var a []netip.Addr
	for _, x := range s {
		a = append(a, netip.MustParseAddr(x))
	}
	return a
}

func TestHostDNS(t *testing.T) {
	for _, tt := range []struct {
		name string
		conf string
		ipv6 bool
		want DNSConfig
	}{
		{"keeps reachable servers, search and options",
			"# generated\nnameserver 192.168.1.1\nnameserver 127.0.0.53\n; old\nsearch a.example b.example\noptions ndots:2\noptions edns0\n", false,
			DNSConfig{Nameservers: addrs("192.168.1.1"), Search: []string{"a.example", "b.example"}, Options: []string{"ndots:2", "edns0"}}},
		{"only loopback: docker's defaults", "nameserver 127.0.0.53\nnameserver ::1\n", false,
			DNSConfig{Nameservers: addrs("8.8.8.8", "8.8.4.4")}},
		{"only loopback with IPv6: docker's v6 defaults too", "nameserver 127.0.1.1\n", true,
			DNSConfig{Nameservers: addrs("8.8.8.8", "8.8.4.4", "2001:4860:4860::8888", "2001:4860:4860::8844")}},
		{"IPv6 servers only with ipv6", "nameserver fd00::1\nnameserver 1.1.1.1\nnameserver fe80::1%eth0\n", false,
			DNSConfig{Nameservers: addrs("1.1.1.1")}},
		{"IPv6 kept with ipv6, zoned dropped", "nameserver fd00::1\nnameserver fe80::1%eth0\n", true,
			DNSConfig{Nameservers: addrs("fd00::1")}},
		{"last search wins, junk ignored", "search a\nsearch b c\nnameserver\nnameserver bogus\nnameserver 9.9.9.9\n", false,
			DNSConfig{Nameservers: addrs("9.9.9.9"), Search: []string{"b", "c"}}},
		{"empty", "", false, DNSConfig{Nameservers: addrs("8.8.8.8", "8.8.4.4")}},
	} {
		if got := HostDNS([]byte(tt.conf), tt.ipv6); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: HostDNS = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestResolvConf(t *testing.T) {
	for _, tt := range []struct {
		c    DNSConfig
		want string
	}{
		{DNSConfig{Nameservers: addrs("10.0.2.3", "fd00::3"), Search: []string{"a", "b"}, Options: []string{"ndots:2", "rotate"}},
			"nameserver 10.0.2.3\nnameserver fd00::3\nsearch a b\noptions ndots:2 rotate\n"},
		{DNSConfig{Nameservers: addrs("8.8.8.8"), Search: []string{"."}}, "nameserver 8.8.8.8\n"},
		{DNSConfig{}, ""},
	} {
		if got := string(ResolvConf(tt.c)); got != tt.want {
			t.Errorf("ResolvConf(%+v) =\n%s\nwant\n%s", tt.c, got, tt.want)
		}
	}
}
