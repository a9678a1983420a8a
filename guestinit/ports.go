package guestinit

import (
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// virtioPortsClass is where the kernel lists virtio-console ports, one
// directory per port (vportNpM) with the name the host gave it.
const virtioPortsClass = "class/virtio-ports"

// FindPorts maps the names of the host's virtio-console ports (e.g.
// "vmm.stdout") to their device nodes (/dev/vport0p1), reading sysfs
// through sys (rooted at /sys). There is no udev in the guest to make
// /dev/virtio-ports/NAME links, so guestinit looks the names up itself.
func FindPorts(sys fs.FS) (map[string]string, error) {
	entries, err := fs.ReadDir(sys, virtioPortsClass)
	if err != nil {
		return nil, fmt.Errorf("list virtio ports: %w", err)
	}
	ports := map[string]string{}
	for _, e := range entries {
		dev := e.Name()
		if !strings.HasPrefix(dev, "vport") {
			continue
		}
		b, err := fs.ReadFile(sys, path.Join(virtioPortsClass, dev, "name"))
		if err != nil {
			continue // a port without a name (no PORT_NAME yet) is not ours
		}
		name := strings.TrimRight(string(b), "\n")
		if name == "" {
			continue
		}
		if other, dup := ports[name]; dup {
			return nil, fmt.Errorf("virtio port name %q is on both %s and /dev/%s", name, other, dev)
		}
		ports[name] = "/dev/" + dev
	}
	return ports, nil
}
