// Package companion finds vmm's companion programs. vmm is split into
// programs that `make build` installs side by side in bin/ (vmm,
// vmm-images, vmm-lab), so the per-VM process links only what a VM needs;
// each runs the others, found through an environment variable or beside
// its own executable.
package companion

import (
	"fmt"
	"os"
	"path/filepath"
)

// The programs and the environment variables that name one installed
// elsewhere (vmm-images is container.ToolName and container.ToolEnv).
const (
	// VMM is the VM process; vmm sets VMMEnv to its own path when it
	// runs vmm-lab, so the lab's VMs run that same vmm.
	VMM    = "vmm"
	VMMEnv = "VMM_EXE"
	// Lab brings up the VMs and networks of a lab file (`vmm lab`).
	Lab    = "vmm-lab"
	LabEnv = "VMM_LAB"
)

// Find returns the program name: $env when set, else name beside the
// running executable.
func Find(name, env string) (string, error) {
	if p := os.Getenv(env); p != "" {
		return p, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find %s: %w", name, err)
	}
	return Beside(exe, name, env)
}

// Beside returns name in exe's directory, or an error that says how to
// install it or where to point env.
func Beside(exe, name, env string) (string, error) {
	p := filepath.Join(filepath.Dir(exe), name)
	if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not installed beside %s: `make build` puts it in bin/ with %s, or set %s to its path",
			name, exe, filepath.Base(exe), env)
	}
	return p, nil
}
