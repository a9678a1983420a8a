package guestinit

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strings"

	"github.com/vmm-dev/vmm/guestinit/protocol"
)

// hostnamePath is the workload's /etc/hostname, as docker writes it.
const hostnamePath = "/etc/hostname"

// etcFiles are the files run mode writes into the workload's /etc, as
// docker provides them: the host name, /etc/hosts naming the guest, and,
// when the guest has a network, resolv.conf. Without one the image's own
// resolv.conf stays: there is nothing to resolve through.
func etcFiles(hostname string, n *protocol.NetworkConfig) map[string][]byte {
	var addr netip.Addr
	var extra []protocol.HostEntry
	if n != nil {
		addr, extra = n.Addr.Addr(), n.ExtraHosts
	}
	files := map[string][]byte{
		hostnamePath:       []byte(hostname + "\n"),
		protocol.HostsPath: protocol.HostsFile(hostname, addr, extra),
	}
	if n != nil {
		files[protocol.ResolvConfPath] = protocol.ResolvConf(n.DNS)
	}
	return files
}

// writeEtcFiles writes etcFiles into the root filesystem at root (the
// overlay, so they land in its writable upper layer). An image's own file
// is replaced, never written through: images often make resolv.conf a
// symlink, and an absolute one would lead out of root. os.Root keeps every
// step inside root.
func writeEtcFiles(root, hostname string, n *protocol.NetworkConfig) error {
	r, err := os.OpenRoot(root)
	if err != nil {
		return fmt.Errorf("write /etc files: %w", err)
	}
	defer r.Close()
	if err := r.MkdirAll("etc", 0o755); err != nil {
		return fmt.Errorf("write /etc files: %w", err)
	}
	for name, data := range etcFiles(hostname, n) {
		rel := strings.TrimPrefix(name, "/")
		if err := r.Remove(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("replace %s: %w", name, err)
		}
		if err := r.WriteFile(rel, data, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}
