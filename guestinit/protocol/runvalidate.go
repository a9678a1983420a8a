package protocol

import (
	"fmt"
	"path"
	"strings"
	"unicode/utf8"
)

// Limits on names, from the kernel: sethostname(2) takes HOST_NAME_MAX
// (64) bytes and interface names are IFNAMSIZ (16) bytes with the NUL.
const (
	maxHostname  = 64
	maxHostEntry = 253 // a DNS name, for --add-host
	maxInterface = 15
)

// Validate reports the first thing in c that guestinit could not use, as
// an ErrBadRunConfig. It checks shapes only: whether a user name exists is
// known only inside the image, when the workload is resolved.
func (c RunConfig) Validate() error {
	if c.Version != RunConfigVersion {
		return badf("version %d, want %d", c.Version, RunConfigVersion)
	}
	checks := []error{
		checkStrings("image Entrypoint", c.Image.Entrypoint),
		checkStrings("image Cmd", c.Image.Cmd),
		checkEnv("image Env", c.Image.Env),
		checkUser("image User", c.Image.User),
		checkStrings("args", c.Args),
		checkEnv("env", c.Env),
		checkUser("user", c.User),
		checkWorkingDir(c),
	}
	if c.Entrypoint != nil {
		checks = append(checks, checkStrings("entrypoint", *c.Entrypoint))
	}
	if c.Hostname != "" {
		checks = append(checks, checkName("hostname", c.Hostname, maxHostname))
	}
	if c.Network != nil {
		checks = append(checks, c.Network.validate())
	}
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	return nil
}

func badf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadRunConfig}, args...)...)
}

// checkString refuses what cannot reach the workload intact: execve(2)
// ends strings at NUL, and JSON carries only UTF-8 (docker's API has the
// same limit).
func checkString(field, s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return badf("%s %q: contains a NUL byte", field, s)
	}
	if !utf8.ValidString(s) {
		return badf("%s %q: not UTF-8", field, s)
	}
	return nil
}

func checkStrings(field string, list []string) error {
	for i, s := range list {
		if err := checkString(fmt.Sprintf("%s[%d]", field, i), s); err != nil {
			return err
		}
	}
	return nil
}

func checkEnv(field string, env []string) error {
	if err := checkStrings(field, env); err != nil {
		return err
	}
	for i, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == "" {
			return badf("%s[%d] %q: no variable name", field, i, kv)
		}
	}
	return nil
}

func checkUser(field, user string) error {
	if err := checkString(field, user); err != nil {
		return err
	}
	if strings.Count(user, ":") > 1 {
		return badf("%s %q: want uid, uid:gid, name or name:group", field, user)
	}
	return nil
}

// checkWorkingDir applies docker's rule to the directory that will be
// used: -w if given, else the image's. Docker does not check the other.
func checkWorkingDir(c RunConfig) error {
	dir, field := c.WorkingDir, "workingDir"
	if dir == "" {
		dir, field = c.Image.WorkingDir, "image WorkingDir"
	}
	if err := checkString(field, dir); err != nil {
		return err
	}
	if dir != "" && !path.IsAbs(dir) {
		return badf("%s %q: the working directory needs to be an absolute path", field, dir)
	}
	return nil
}

// checkName accepts host names as /etc/hosts and sethostname(2) can carry
// them: letters, digits, '-', '_' and '.', not starting with '-' or '.'.
// Underscores are not RFC 1123, but docker accepts them and so do
// resolvers reading /etc/hosts.
func checkName(field, name string, maxLen int) error {
	if name == "" || len(name) > maxLen {
		return badf("%s %q: want 1 to %d characters", field, name, maxLen)
	}
	if name[0] == '-' || name[0] == '.' {
		return badf("%s %q: starts with %q", field, name, name[0])
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
		if !ok {
			return badf("%s %q: %q is not allowed in a host name", field, name, r)
		}
	}
	return nil
}

func (n NetworkConfig) validate() error {
	if n.Interface != "" {
		if len(n.Interface) > maxInterface || strings.ContainsAny(n.Interface, "/: \t\n\x00") {
			return badf("network interface %q: not an interface name", n.Interface)
		}
	}
	if n.Gateway.IsValid() && n.Addr.IsValid() && n.Gateway.Is4() != n.Addr.Addr().Is4() {
		return badf("network gateway %s: not the same IP version as address %s", n.Gateway, n.Addr)
	}
	if err := n.DNS.validate(); err != nil {
		return err
	}
	for i, h := range n.ExtraHosts {
		if err := checkName(fmt.Sprintf("extraHosts[%d] name", i), h.Name, maxHostEntry); err != nil {
			return err
		}
		if !h.Addr.IsValid() {
			return badf("extraHosts[%d] %s: no address", i, h.Name)
		}
	}
	return nil
}

func (d DNSConfig) validate() error {
	for i, a := range d.Nameservers {
		if !a.IsValid() {
			return badf("dns nameservers[%d]: no address", i)
		}
	}
	if err := checkWords("dns search", d.Search); err != nil {
		return err
	}
	return checkWords("dns options", d.Options)
}

// checkWords accepts what fits a resolv.conf line as one word.
func checkWords(field string, words []string) error {
	for _, w := range words {
		if w == "" || strings.ContainsAny(w, " \t\r\n\x00#;") || !utf8.ValidString(w) {
			return badf("%s %q: want one word", field, w)
		}
	}
	return nil
}
