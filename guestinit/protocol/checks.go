package protocol

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ModuleList is the initramfs file that lists the kernel modules guestinit
// loads, one absolute path per line, dependencies first.
const ModuleList = "/lib/modules/guestinit.order"

// MountPoint is where the disk check mounts its disk.
const MountPoint = "/mnt"

// Check names, as vmm.check lists them.
const (
	CheckCPUs = "cpus"
	CheckPCI  = "pci"
	CheckDisk = "disk"
	CheckNet  = "net"
	// CheckRunConfig decodes the per-run config (RunConfigPath), which the
	// host appends to the initramfs as a second archive.
	CheckRunConfig = "runconfig"
)

// Defaults for options left off the command line.
const (
	DefaultDiskDevice = "/dev/vda"
	DefaultDiskFSType = "ext4"
	DefaultInterface  = "eth0"
	DefaultNetTimeout = 60 * time.Second
)

// Checks is what the command line asks guestinit to check. A nil Disk or
// Net means that check was not asked for.
type Checks struct {
	CPUs      bool
	PCI       bool
	RunConfig bool
	Disk      *DiskCheck
	Net       *NetCheck
}

// DiskCheck configures the disk check; paths are relative to the disk's root.
type DiskCheck struct {
	Device string
	FSType string
	Hash   string // file whose SHA-256 is printed; none when empty
	Write  string // file to write Data to; none when empty
	Data   []byte
}

// NetCheck configures the net check.
type NetCheck struct {
	Interface string
	Addr      netip.Prefix
	Gateway   netip.Addr // no default route when invalid (the zero Addr)
	Port      uint16     // nothing is served when 0
	File      string     // guest path of the file served on Port
	Timeout   time.Duration
}

// Any reports whether any check was asked for.
func (c Checks) Any() bool { return c.CPUs || c.PCI || c.RunConfig || c.Disk != nil || c.Net != nil }

// ErrBadOption marks a check option guestinit cannot use.
var ErrBadOption = errors.New("bad check option")

// ParseCmdline reads the check options from a kernel command line (as
// /proc/cmdline shows it). Options of checks that were not asked for are
// ignored; unknown vmm.* options are errors, so a typo is not silently
// dropped.
func ParseCmdline(cmdline string) (Checks, error) {
	opts := map[string]string{}
	for _, f := range SplitCmdline(cmdline) {
		key, value, _ := strings.Cut(f, "=")
		if !strings.HasPrefix(key, "vmm.") {
			continue
		}
		if !knownOptions[key] {
			return Checks{}, fmt.Errorf("%w: unknown option %s", ErrBadOption, key)
		}
		v, err := url.PathUnescape(value)
		if err != nil {
			return Checks{}, fmt.Errorf("%w: %s: %v", ErrBadOption, key, err)
		}
		opts[key] = v
	}
	var c Checks
	if opts[optCheck] == "" {
		return c, nil
	}
	for _, name := range strings.Split(opts[optCheck], ",") {
		var err error
		switch name {
		case CheckCPUs:
			c.CPUs = true
		case CheckPCI:
			c.PCI = true
		case CheckRunConfig:
			c.RunConfig = true
		case CheckDisk:
			c.Disk = parseDisk(opts)
		case CheckNet:
			c.Net, err = parseNet(opts)
		default:
			err = fmt.Errorf("%w: %s: unknown check %q (want %s, %s, %s, %s or %s)",
				ErrBadOption, optCheck, name, CheckCPUs, CheckPCI, CheckRunConfig, CheckDisk, CheckNet)
		}
		if err != nil {
			return Checks{}, err
		}
	}
	return c, nil
}

// Option names.
const (
	optCheck      = "vmm.check"
	optDiskDev    = "vmm.disk.dev"
	optDiskFSType = "vmm.disk.fstype"
	optDiskHash   = "vmm.disk.hash"
	optDiskWrite  = "vmm.disk.write"
	optDiskData   = "vmm.disk.data"
	optNetIf      = "vmm.net.if"
	optNetAddr    = "vmm.net.addr"
	optNetGw      = "vmm.net.gw"
	optNetPort    = "vmm.net.port"
	optNetFile    = "vmm.net.file"
	optNetTimeout = "vmm.net.timeout"
)

var knownOptions = map[string]bool{
	optCheck: true, optDiskDev: true, optDiskFSType: true, optDiskHash: true,
	optDiskWrite: true, optDiskData: true, optNetIf: true, optNetAddr: true,
	optNetGw: true, optNetPort: true, optNetFile: true, optNetTimeout: true,
	// vmm.agent=1 selects guestinit's agent mode (package guestinit/agent);
	// the checks only have to accept it.
	"vmm.agent": true,
}

func parseDisk(opts map[string]string) *DiskCheck {
	return &DiskCheck{
		Device: withDefault(opts[optDiskDev], DefaultDiskDevice),
		FSType: withDefault(opts[optDiskFSType], DefaultDiskFSType),
		Hash:   opts[optDiskHash],
		Write:  opts[optDiskWrite],
		Data:   []byte(opts[optDiskData]),
	}
}

func parseNet(opts map[string]string) (*NetCheck, error) {
	n := &NetCheck{Interface: withDefault(opts[optNetIf], DefaultInterface), File: opts[optNetFile], Timeout: DefaultNetTimeout}
	var err error
	if n.Addr, err = netip.ParsePrefix(opts[optNetAddr]); err != nil || !n.Addr.Addr().Is4() {
		return nil, fmt.Errorf("%w: %s=%q: want an IPv4 address and prefix length, like 10.0.2.15/24", ErrBadOption, optNetAddr, opts[optNetAddr])
	}
	if gw := opts[optNetGw]; gw != "" {
		if n.Gateway, err = netip.ParseAddr(gw); err != nil || !n.Gateway.Is4() {
			return nil, fmt.Errorf("%w: %s=%q: want an IPv4 address", ErrBadOption, optNetGw, gw)
		}
	}
	if p := opts[optNetPort]; p != "" {
		port, err := strconv.ParseUint(p, 10, 16)
		if err != nil || port == 0 {
			return nil, fmt.Errorf("%w: %s=%q: want a TCP port, 1 to 65535", ErrBadOption, optNetPort, p)
		}
		n.Port = uint16(port)
		if n.File == "" {
			return nil, fmt.Errorf("%w: %s needs %s, the file to serve", ErrBadOption, optNetPort, optNetFile)
		}
	}
	if s := opts[optNetTimeout]; s != "" {
		secs, err := strconv.ParseUint(s, 10, 32)
		if err != nil || secs == 0 {
			return nil, fmt.Errorf("%w: %s=%q: want whole seconds, at least 1", ErrBadOption, optNetTimeout, s)
		}
		n.Timeout = time.Duration(secs) * time.Second
	}
	return n, nil
}

func withDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// Params returns the command-line options that ask for c, for a host to
// append to a guest's kernel command line. ParseCmdline reads them back.
func (c Checks) Params() []string {
	var names, params []string
	add := func(key, value string) {
		if value != "" {
			params = append(params, key+"="+escape(value))
		}
	}
	if c.CPUs {
		names = append(names, CheckCPUs)
	}
	if c.PCI {
		names = append(names, CheckPCI)
	}
	if d := c.Disk; d != nil {
		names = append(names, CheckDisk)
		add(optDiskDev, d.Device)
		add(optDiskFSType, d.FSType)
		add(optDiskHash, d.Hash)
		add(optDiskWrite, d.Write)
		add(optDiskData, string(d.Data))
	}
	if n := c.Net; n != nil {
		names = append(names, CheckNet)
		add(optNetIf, n.Interface)
		if n.Addr.IsValid() {
			add(optNetAddr, n.Addr.String())
		}
		if n.Gateway.IsValid() {
			add(optNetGw, n.Gateway.String())
		}
		if n.Port != 0 {
			add(optNetPort, strconv.Itoa(int(n.Port)))
		}
		add(optNetFile, n.File)
		if n.Timeout != 0 {
			add(optNetTimeout, strconv.Itoa(max(1, int(n.Timeout.Round(time.Second)/time.Second))))
		}
	}
	if len(names) == 0 {
		return nil
	}
	return append([]string{optCheck + "=" + strings.Join(names, ",")}, params...)
}

// escape percent-encodes the bytes of v that cannot stand on a kernel
// command line as they are: spaces, quotes, controls, non-ASCII, and %.
// url.PathUnescape undoes it.
func escape(v string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c > ' ' && c < 0x7f && c != '"' && c != '%' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}

// SplitCmdline splits a kernel command line into its parameters the way
// the kernel does (lib/cmdline.c next_arg): on spaces, except inside double
// quotes, which are removed.
func SplitCmdline(cmdline string) []string {
	var params []string
	var cur strings.Builder
	inQuote, started := false, false
	for _, r := range cmdline {
		switch {
		case r == '"':
			inQuote = !inQuote
			started = true
		case !inQuote && (r == ' ' || r == '\t' || r == '\n'):
			if started {
				params = append(params, cur.String())
				cur.Reset()
				started = false
			}
		default:
			cur.WriteRune(r)
			started = true
		}
	}
	if started {
		params = append(params, cur.String())
	}
	return params
}
