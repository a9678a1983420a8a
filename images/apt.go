package images

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// runTool runs a host tool and returns its stdout; errors carry stderr.
func runTool(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	if _, err := exec.LookPath(name); err != nil {
		return nil, fmt.Errorf("%s not found: vmm provisions kernels with Debian's apt tools (apt-get, apt-cache, dpkg-deb); run on Debian or Ubuntu or pass your own kernel", name)
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := errorLines(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("%s %s: %s", name, strings.Join(args, " "), lastLines(msg, 3))
	}
	return stdout.Bytes(), nil
}

// errorLines keeps apt's "E:" lines when there are any: its warnings (such
// as running unsandboxed as root) only bury the reason.
func errorLines(stderr string) string {
	var errs []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "E: ") {
			errs = append(errs, l)
		}
	}
	if len(errs) == 0 {
		return strings.TrimSpace(stderr)
	}
	return strings.Join(errs, "\n")
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "; ")
}

// aptResolve reads meta's Depends from the local apt lists.
func aptResolve(ctx context.Context, meta string) (DebPackage, error) {
	out, err := runTool(ctx, "", "apt-cache", "show", "--no-all-versions", meta)
	if err != nil {
		return DebPackage{}, fmt.Errorf("could not find Debian's cloud kernel package: %w; run `apt-get update` first", err)
	}
	pkg, err := parseKernelDepends(out)
	if err != nil {
		return DebPackage{}, fmt.Errorf("apt-cache show %s: %w", meta, err)
	}
	return pkg, nil
}

// kernelDependsRE matches a metapackage's pinned kernel dependency, e.g.
// "linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)".
var kernelDependsRE = regexp.MustCompile(`(linux-image-[^\s,|()]+)\s*\(=\s*([^\s)]+)\)`)

// parseKernelDepends finds the pinned linux-image dependency in the stanza
// that apt-cache show prints for a kernel metapackage.
func parseKernelDepends(stanza []byte) (DebPackage, error) {
	for _, line := range strings.Split(string(stanza), "\n") {
		deps, ok := strings.CutPrefix(line, "Depends:")
		if !ok {
			continue
		}
		if m := kernelDependsRE.FindStringSubmatch(deps); m != nil {
			return DebPackage{Name: m[1], Version: m[2]}, nil
		}
	}
	return DebPackage{}, errors.New("no pinned linux-image-* dependency in its Depends")
}

// aptDownload fetches exactly pkg's version; apt-get verifies the .deb
// against the signed lists.
func aptDownload(ctx context.Context, pkg DebPackage, dir string) (string, error) {
	if _, err := runTool(ctx, dir, "apt-get", "download", "-q", pkg.Name+"="+pkg.Version); err != nil {
		return "", fmt.Errorf("%w: %w; run `apt-get update` first, and check that Debian's mirrors can be reached", ErrKernelDownload, err)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	if len(debs) != 1 {
		return "", fmt.Errorf("%w: apt-get download %s left %d .deb files, want 1", ErrKernelDownload, pkg.Name, len(debs))
	}
	return debs[0], nil
}

func dpkgExtract(ctx context.Context, deb, dir string) error {
	if _, err := runTool(ctx, "", "dpkg-deb", "-x", deb, dir); err != nil {
		return fmt.Errorf("unpack kernel package: %w", err)
	}
	return nil
}
