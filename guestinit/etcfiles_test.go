package guestinit

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/vmm-dev/vmm/guestinit/protocol"
)

func TestEtcFiles_WithAndWithoutNetwork(t *testing.T) {
	bare := etcFiles("box", nil)
	if len(bare) != 2 || string(bare[hostnamePath]) != "box\n" {
		t.Errorf("without a network: %q, want /etc/hostname and /etc/hosts only", bare)
	}
	if want := protocol.HostsFile("box", netip.Addr{}, nil); string(bare[protocol.HostsPath]) != string(want) {
		t.Errorf("/etc/hosts = %q, want %q", bare[protocol.HostsPath], want)
	}
	n := &protocol.NetworkConfig{
		Addr: netip.MustParsePrefix("10.0.2.15/24"),
		DNS:  protocol.DNSConfig{Nameservers: []netip.Addr{netip.MustParseAddr("10.0.2.3")}},
	}
	files := etcFiles("box", n)
	if want := protocol.HostsFile("box", n.Addr.Addr(), nil); string(files[protocol.HostsPath]) != string(want) {
		t.Errorf("/etc/hosts = %q, want %q", files[protocol.HostsPath], want)
	}
	if got := string(files[protocol.ResolvConfPath]); got != "nameserver 10.0.2.3\n" {
		t.Errorf("/etc/resolv.conf = %q", got)
	}
}

// An image's resolv.conf that is a symlink, absolute as images make them,
// is replaced inside the root, not followed to the machine's own file.
func TestWriteEtcFiles_ReplacesSymlinksInsideRoot(t *testing.T) {
	root := t.TempDir()
	outside := filepath.Join(t.TempDir(), "host-resolv.conf")
	if err := os.WriteFile(outside, []byte("host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "etc/resolv.conf")); err != nil {
		t.Fatal(err)
	}
	n := &protocol.NetworkConfig{DNS: protocol.DNSConfig{Nameservers: []netip.Addr{netip.MustParseAddr("10.0.2.3")}}}
	if err := writeEtcFiles(root, "box", n); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(outside); string(got) != "host\n" {
		t.Errorf("the file outside the root became %q", got)
	}
	fi, err := os.Lstat(filepath.Join(root, "etc/resolv.conf"))
	if err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("/etc/resolv.conf in the root: %v, %v; want a regular file", fi, err)
	}
	for name, want := range map[string]string{"etc/resolv.conf": "nameserver 10.0.2.3\n", "etc/hostname": "box\n"} {
		if got, _ := os.ReadFile(filepath.Join(root, name)); string(got) != want {
			t.Errorf("/%s = %q, want %q", name, got, want)
		}
	}
}

// An image without /etc gets one.
func TestWriteEtcFiles_NoEtc_Created(t *testing.T) {
	root := t.TempDir()
	if err := writeEtcFiles(root, "box", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/hosts")); err != nil {
		t.Error(err)
	}
}
