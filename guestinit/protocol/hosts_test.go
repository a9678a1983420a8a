package protocol

import (
	"net/netip"
	"testing"
)

const dockerDefaultHosts = "127.0.0.1\tlocalhost\n" +
	"::1\tlocalhost ip6-localhost ip6-loopback\n" +
	"fe00::0\tip6-localnet\n" +
	"ff00::0\tip6-mcastprefix\n" +
	"ff02::1\tip6-allnodes\n" +
	"ff02::2\tip6-allrouters\n"

func TestHostsFile(t *testing.T) {
	extra := []HostEntry{{"db", netip.MustParseAddr("10.0.2.20")}, {"v6", netip.MustParseAddr("fd00::5")}}
	for _, tt := range []struct {
		name     string
		hostname string
		addr     netip.Addr
		extra    []HostEntry
		want     string
	}{
		{"docker's layout", "abc123def456", netip.MustParseAddr("172.17.0.2"), nil,
			dockerDefaultHosts + "172.17.0.2\tabc123def456\n"},
		{"extra hosts before own", "web", netip.MustParseAddr("10.0.2.15"), extra,
			dockerDefaultHosts + "10.0.2.20\tdb\nfd00::5\tv6\n10.0.2.15\tweb\n"},
		{"fqdn adds short name", "web.example.com", netip.MustParseAddr("10.0.2.15"), nil,
			dockerDefaultHosts + "10.0.2.15\tweb.example.com web\n"},
		{"no address still resolves", "web", netip.Addr{}, nil,
			dockerDefaultHosts + "127.0.1.1\tweb\n"},
		{"no hostname", "", netip.Addr{}, nil, dockerDefaultHosts},
	} {
		if got := string(HostsFile(tt.hostname, tt.addr, tt.extra)); got != tt.want {
			t.Errorf("%s: HostsFile =\n%s\nwant\n%s", tt.name, got, tt.want)
		}
	}
}
