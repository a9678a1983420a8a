package guestinit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// LoadModules loads the kernel modules that the file list names, in its
// order (the host wrote dependencies first). A missing list means the
// initramfs carries no modules. A module the kernel already has (built in,
// or loaded) counts as loaded. Every failure is returned, joined; the rest
// are still tried.
func LoadModules(list string) error {
	data, err := os.ReadFile(list)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read module list: %w", err)
	}
	var errs []error
	for _, path := range ParseModuleList(string(data)) {
		if err := loadModule(path); err != nil {
			errs = append(errs, fmt.Errorf("load module %s: %w", path, err))
		}
	}
	return errors.Join(errs...)
}

// ParseModuleList returns the module paths of a module list: one per
// line; blank lines and lines starting with # are skipped.
func ParseModuleList(data string) []string {
	var paths []string
	for _, line := range strings.Split(data, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		paths = append(paths, line)
	}
	return paths
}

// loadModule loads one uncompressed module file with finit_module(2). The
// host decompresses modules when it builds the initramfs, so the kernel
// needs no CONFIG_MODULE_DECOMPRESS.
func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	err = unix.FinitModule(int(f.Fd()), "", 0)
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	return err
}
