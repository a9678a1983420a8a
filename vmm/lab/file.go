// Package lab brings up a set of VMs described in a small TOML file, the
// way `vmm lab FILE` does: each VM is its own vmm process (`vmm boot` for
// a kernel, `vmm run` for an image), the VMs on a network share an L2
// segment through a switch this process hosts, and their output is
// multiplexed with each line prefixed by the VM's name.
//
// A lab file:
//
//	[[network]]
//	name = "lan"                 # subnet = "10.89.0.0/24" by default
//
//	[[vm]]
//	name = "server"
//	image = "oci-layout:out/busybox:latest"
//	command = ["httpd", "-f", "-p", "80"]
//	networks = ["lan"]
//
//	[[vm]]
//	name = "probe"
//	kernel = "out/probe.bzImage"  # or initrd, cmdline
//	memory = "64M"
//	networks = ["lan"]
//
// Image VMs get an address on their first network (the subnet's .2, .3,
// ... in file order unless ip is given) and /etc/hosts entries for every
// other VM with an address there, so they reach each other by name.
package lab

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"
)

// File is a parsed lab file.
type File struct {
	Networks []Network `toml:"network"`
	VMs      []VM      `toml:"vm"`
}

// Network is one L2 segment.
type Network struct {
	Name   string `toml:"name"`
	Subnet string `toml:"subnet"` // IPv4 prefix for image VMs; default 10.89.N.0/24
}

// VM is one machine. Exactly one of Kernel and Image is set.
type VM struct {
	Name    string   `toml:"name"`
	Kernel  string   `toml:"kernel"`
	Initrd  string   `toml:"initrd"`
	Cmdline string   `toml:"cmdline"`
	Image   string   `toml:"image"`
	Command []string `toml:"command"` // the image's workload (replaces its Cmd)
	Env     []string `toml:"env"`     // K=V, for image VMs
	IP      string   `toml:"ip"`      // address on the first network, A.B.C.D; image VMs only
	CPUs    int      `toml:"cpus"`
	Memory  string   `toml:"memory"`
	Disks   []string `toml:"disks"`
	// Networks are the segments the VM joins, in order (eth0 first).
	Networks []string `toml:"networks"`
}

// ErrBadFile marks a lab file that cannot be used.
var ErrBadFile = errors.New("bad lab file")

// Limits keep a lab to what one host runs.
const (
	MaxVMs      = 64
	MaxNetworks = 16
)

// Parse reads a lab file. Relative paths in it are taken relative to dir
// (the file's directory). Unknown keys are errors, so a typo does not
// silently drop a setting.
func Parse(r io.Reader, dir string) (File, error) {
	var f File
	md, err := toml.NewDecoder(r).Decode(&f)
	if err != nil {
		return File{}, fmt.Errorf("%w: %v", ErrBadFile, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return File{}, fmt.Errorf("%w: unknown key %s", ErrBadFile, strings.Join(keys, ", "))
	}
	if err := f.validate(); err != nil {
		return File{}, err
	}
	for i := range f.VMs {
		vm := &f.VMs[i]
		for _, p := range []*string{&vm.Kernel, &vm.Initrd} {
			if *p != "" && !filepath.IsAbs(*p) {
				*p = filepath.Join(dir, *p)
			}
		}
		for j, d := range vm.Disks {
			if !filepath.IsAbs(d) {
				vm.Disks[j] = filepath.Join(dir, d)
			}
		}
	}
	return f, nil
}

func badf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadFile}, args...)...)
}

func (f *File) validate() error {
	if len(f.VMs) == 0 {
		return badf("no [[vm]]: a lab needs at least one VM")
	}
	if len(f.VMs) > MaxVMs || len(f.Networks) > MaxNetworks {
		return badf("%d VMs and %d networks; at most %d and %d", len(f.VMs), len(f.Networks), MaxVMs, MaxNetworks)
	}
	nets := map[string]bool{}
	for i, n := range f.Networks {
		if err := checkName("network", n.Name); err != nil {
			return err
		}
		if nets[n.Name] {
			return badf("network %q is defined twice", n.Name)
		}
		nets[n.Name] = true
		if n.Subnet != "" {
			p, err := netip.ParsePrefix(n.Subnet)
			if err != nil || !p.Addr().Is4() || p.Bits() > 29 || p.Masked() != p {
				return badf("network %q: subnet %q: want an IPv4 network such as 10.89.%d.0/24", n.Name, n.Subnet, i)
			}
		}
	}
	names := map[string]bool{}
	for _, vm := range f.VMs {
		if err := checkName("vm", vm.Name); err != nil {
			return err
		}
		if names[vm.Name] {
			return badf("vm %q is defined twice", vm.Name)
		}
		names[vm.Name] = true
		if (vm.Kernel == "") == (vm.Image == "") {
			return badf("vm %q: give either kernel or image", vm.Name)
		}
		if vm.Kernel != "" && (len(vm.Command) > 0 || len(vm.Env) > 0 || vm.IP != "") {
			return badf("vm %q: command, env and ip are for image VMs (a kernel VM's program is its kernel and initrd)", vm.Name)
		}
		if vm.Image != "" && (vm.Initrd != "" || vm.Cmdline != "") {
			return badf("vm %q: initrd and cmdline are for kernel VMs", vm.Name)
		}
		if vm.IP != "" {
			if a, err := netip.ParseAddr(vm.IP); err != nil || !a.Is4() {
				return badf("vm %q: ip %q: want an IPv4 address", vm.Name, vm.IP)
			}
			if len(vm.Networks) == 0 {
				return badf("vm %q: ip without a network", vm.Name)
			}
		}
		if vm.CPUs < 0 {
			return badf("vm %q: cpus %d", vm.Name, vm.CPUs)
		}
		seen := map[string]bool{}
		for _, n := range vm.Networks {
			if !nets[n] {
				return badf("vm %q: network %q is not defined (add a [[network]] with name = %q)", vm.Name, n, n)
			}
			if seen[n] {
				return badf("vm %q joins network %q twice", vm.Name, n)
			}
			seen[n] = true
		}
	}
	return nil
}

// checkName accepts names that work as host names and output prefixes.
func checkName(kind, name string) error {
	if name == "" || len(name) > 32 {
		return badf("%s name %q: want 1 to 32 characters", kind, name)
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' && i > 0
		if !ok {
			return badf("%s name %q: use lower-case letters, digits and '-'", kind, name)
		}
	}
	return nil
}
