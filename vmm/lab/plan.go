package lab

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"time"
)

// Plan is a lab resolved into vmm command lines: the switch each network
// gets and each VM's arguments to the vmm command.
type Plan struct {
	Networks []PlannedNetwork
	VMs      []PlannedVM
}

// PlannedNetwork is a network's switch socket and subnet.
type PlannedNetwork struct {
	Name   string
	Socket string
	Subnet netip.Prefix
}

// PlannedVM is one VM's vmm command line (without the program name).
type PlannedVM struct {
	Name string
	Args []string
	// Addr is the VM's address on its first network; invalid for kernel
	// VMs, which configure their own.
	Addr netip.Addr
}

// KernelStopTimeout is how long a kernel VM's guest gets to power off
// after the lab's SIGTERM; it is below Run's default StopTimeout.
const KernelStopTimeout = 5 * time.Second

// MAC is the address of VM number vm (in file order) on network number
// net: locally administered, stable across runs, unique within a lab.
func MAC(net, vm int) string {
	return fmt.Sprintf("02:76:6d:%02x:%02x:00", net, vm)
}

// Plan resolves f, with the switches' sockets in switchDir.
func (f File) Plan(switchDir string) (Plan, error) {
	var p Plan
	netIndex := map[string]int{}
	for i, n := range f.Networks {
		subnet := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 89, byte(i), 0}), 24)
		if n.Subnet != "" {
			subnet = netip.MustParsePrefix(n.Subnet) // validated by Parse
		}
		netIndex[n.Name] = i
		p.Networks = append(p.Networks, PlannedNetwork{
			Name: n.Name, Socket: filepath.Join(switchDir, n.Name+".sock"), Subnet: subnet,
		})
	}
	addrs, err := f.addresses(p.Networks, netIndex)
	if err != nil {
		return Plan{}, err
	}
	for i, vm := range f.VMs {
		pv := PlannedVM{Name: vm.Name, Addr: addrs[i]}
		if vm.Kernel != "" {
			// On the lab's SIGTERM vmm presses the power button; a guest
			// that ignores it is stopped by vmm itself, before the lab's
			// own timeout would kill vmm.
			pv.Args = []string{"boot", "--stop-timeout", KernelStopTimeout.String(), "--kernel", vm.Kernel}
			if vm.Initrd != "" {
				pv.Args = append(pv.Args, "--initrd", vm.Initrd)
			}
			if vm.Cmdline != "" {
				pv.Args = append(pv.Args, "--cmdline", vm.Cmdline)
			}
		} else {
			pv.Args = []string{"run", "--hostname", vm.Name}
		}
		if vm.Memory != "" {
			pv.Args = append(pv.Args, "--memory", vm.Memory)
		}
		if vm.CPUs != 0 {
			pv.Args = append(pv.Args, "--cpus", strconv.Itoa(vm.CPUs))
		}
		for _, d := range vm.Disks {
			pv.Args = append(pv.Args, "--disk", d)
		}
		for j, name := range vm.Networks {
			k := netIndex[name]
			spec := "socket=" + p.Networks[k].Socket + ",mac=" + MAC(k, i)
			if j == 0 && pv.Addr.IsValid() {
				spec += ",ip=" + netip.PrefixFrom(pv.Addr, p.Networks[k].Subnet.Bits()).String()
			}
			pv.Args = append(pv.Args, "--net", spec)
		}
		if vm.Image != "" {
			// Every other VM with an address on this VM's first network,
			// by name.
			for o, other := range f.VMs {
				if o != i && pv.Addr.IsValid() && addrs[o].IsValid() && len(other.Networks) > 0 && other.Networks[0] == vm.Networks[0] {
					pv.Args = append(pv.Args, "--add-host", other.Name+":"+addrs[o].String())
				}
			}
			for _, e := range vm.Env {
				pv.Args = append(pv.Args, "-e", e)
			}
			pv.Args = append(pv.Args, vm.Image)
			pv.Args = append(pv.Args, vm.Command...)
		}
		p.VMs = append(p.VMs, pv)
	}
	return p, nil
}

// addresses gives each image VM with a network an address on its first
// one: its ip, or the subnet's host number (file index + 2).
func (f File) addresses(nets []PlannedNetwork, netIndex map[string]int) ([]netip.Addr, error) {
	addrs := make([]netip.Addr, len(f.VMs))
	used := map[netip.Addr]string{}
	for i, vm := range f.VMs {
		if vm.Image == "" || len(vm.Networks) == 0 {
			continue
		}
		subnet := nets[netIndex[vm.Networks[0]]].Subnet
		var a netip.Addr
		if vm.IP != "" {
			a = netip.MustParseAddr(vm.IP)
		} else {
			a = subnet.Addr()
			for range i + 2 {
				a = a.Next()
			}
		}
		if !subnet.Contains(a) || a == subnet.Addr() || a == broadcast(subnet) {
			return nil, badf("vm %q: address %s is not a host address in %s (%s)", vm.Name, a, vm.Networks[0], subnet)
		}
		if other, dup := used[a]; dup {
			return nil, badf("vm %q: address %s is also %q's", vm.Name, a, other)
		}
		used[a] = vm.Name
		addrs[i] = a
	}
	return addrs, nil
}

// broadcast is an IPv4 subnet's last address.
func broadcast(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	for i := p.Bits(); i < 32; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom4(b)
}
