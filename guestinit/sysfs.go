package guestinit

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/vmm-dev/vmm/guestinit/protocol"
)

// The cpus and pci checks read sysfs through an fs.FS rooted at /sys, so
// tests hand them a fstest.MapFS.
const (
	cpuOnlinePath  = "devices/system/cpu/online"
	pciDevicesPath = "bus/pci/devices"
)

// cpusCheck reports the online CPUs as the kernel lists them ("0-1") and
// how many that is.
func cpusCheck(sys fs.FS) protocol.Result {
	b, err := fs.ReadFile(sys, cpuOnlinePath)
	if err != nil {
		return protocol.Failed(protocol.CheckCPUs, err)
	}
	list := strings.TrimSpace(string(b))
	n, err := CountCPUList(list)
	if err != nil {
		return protocol.Failed(protocol.CheckCPUs, fmt.Errorf("/sys/%s: %w", cpuOnlinePath, err))
	}
	return protocol.Passed(protocol.CheckCPUs, "online", list, "count", strconv.Itoa(n))
}

// CountCPUList counts the CPUs in a kernel CPU list such as "0-3,8,10-11"
// (Documentation/admin-guide/cputopology.rst).
func CountCPUList(list string) (int, error) {
	if list == "" {
		return 0, errors.New("empty CPU list")
	}
	n := 0
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		first, err1 := strconv.ParseUint(lo, 10, 16)
		last := first
		var err2 error
		if isRange {
			last, err2 = strconv.ParseUint(hi, 10, 16)
		}
		if err1 != nil || err2 != nil || last < first {
			return 0, fmt.Errorf("bad CPU list %q", list)
		}
		n += int(last-first) + 1
	}
	return n, nil
}

// pciCheck reports every PCI function as address=vendor:device, in address
// order, e.g. 0000:00:02.0=1af4:1042.
func pciCheck(sys fs.FS) protocol.Result {
	ents, err := fs.ReadDir(sys, pciDevicesPath)
	if err != nil {
		return protocol.Failed(protocol.CheckPCI, err)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	var kv []string
	for _, addr := range names {
		vendor, err1 := readPCIID(sys, addr, "vendor")
		device, err2 := readPCIID(sys, addr, "device")
		if err := errors.Join(err1, err2); err != nil {
			return protocol.Failed(protocol.CheckPCI, err)
		}
		kv = append(kv, addr, vendor+":"+device)
	}
	return protocol.Passed(protocol.CheckPCI, kv...)
}

// readPCIID reads a sysfs ID file ("0x1af4\n") as four hex digits.
func readPCIID(sys fs.FS, addr, file string) (string, error) {
	p := path.Join(pciDevicesPath, addr, file)
	b, err := fs.ReadFile(sys, p)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	id, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 16)
	if err != nil || !strings.HasPrefix(s, "0x") {
		return "", fmt.Errorf("/sys/%s: bad ID %q", p, s)
	}
	return fmt.Sprintf("%04x", id), nil
}
