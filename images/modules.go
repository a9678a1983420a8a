package images

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ulikunitz/xz"
	"github.com/vmm-dev/vmm/guestinit/protocol"
)

// GuestModules returns the kernel modules a guest needs for vmm's devices:
// virtio over PCI and its block, network, entropy and console drivers, ext4
// for disks and overlayfs for a run's writable root. Resolving them skips
// those a kernel has built in (Debian's cloud kernel builds ext4 in and
// virtio and overlayfs as modules).
func GuestModules() []string {
	return []string{"virtio_pci", "virtio_blk", "virtio_net", "virtio_rng", "virtio_console", "ext4", "overlay"}
}

// Module is one loadable kernel module, read from a kernel's modules tree.
type Module struct {
	Name    string   // the kernel's name for it, e.g. virtio_rng
	Path    string   // its file in the modules tree, e.g. kernel/drivers/char/hw_random/virtio-rng.ko
	Depends []string // modules it needs loaded first, from its .modinfo
	Data    []byte   // the module, decompressed: what finit_module(2) takes
}

// ErrModuleNotFound is returned for a module that is neither a file in the
// modules tree nor built into the kernel.
var ErrModuleNotFound = errors.New("kernel module not found")

// moduleSuffixes are the file endings of modules, compressed or not.
var moduleSuffixes = []string{".ko", ".ko.xz", ".ko.gz"}

// ResolveModules returns the named modules of the modules tree at dir
// (lib/modules/<release>) with everything they depend on, in an order the
// kernel can load them: every module after its dependencies. Modules the
// kernel has built in (modules.builtin) are left out. Dependencies come from
// each module's .modinfo "depends=" (what depmod writes into modules.dep,
// which Debian's packages do not ship); soft dependencies are not followed.
func ResolveModules(dir string, names []string) ([]Module, error) {
	builtin, err := builtinModules(dir)
	if err != nil {
		return nil, err
	}
	files, err := moduleFiles(dir)
	if err != nil {
		return nil, err
	}
	r := resolver{dir: dir, builtin: builtin, files: files, state: map[string]int{}}
	for _, n := range names {
		if err := r.add(moduleName(n), nil); err != nil {
			return nil, err
		}
	}
	return r.order, nil
}

// Resolution states of a module.
const (
	unvisited = iota
	visiting  // on the current dependency path: seeing it again is a cycle
	resolved
)

type resolver struct {
	dir     string
	builtin map[string]bool
	files   map[string]string // module name -> path in the tree
	state   map[string]int
	order   []Module
}

func (r *resolver) add(name string, path []string) error {
	switch {
	case r.builtin[name] || r.state[name] == resolved:
		return nil
	case r.state[name] == visiting:
		return fmt.Errorf("kernel modules depend on each other in a cycle: %s", strings.Join(append(path, name), " -> "))
	}
	rel, ok := r.files[name]
	if !ok {
		if len(path) > 0 {
			return fmt.Errorf("%w: %s (needed by %s) in %s", ErrModuleNotFound, name, path[len(path)-1], r.dir)
		}
		return fmt.Errorf("%w: %s in %s", ErrModuleNotFound, name, r.dir)
	}
	r.state[name] = visiting
	m, err := readModule(r.dir, rel)
	if err != nil {
		return err
	}
	chain := append(slices.Clip(path), name)
	for _, dep := range m.Depends {
		if err := r.add(dep, chain); err != nil {
			return err
		}
	}
	r.state[name] = resolved
	r.order = append(r.order, m)
	return nil
}

// moduleName is the kernel's spelling of a module name: file names may use
// '-' where the kernel uses '_'.
func moduleName(s string) string {
	return strings.ReplaceAll(s, "-", "_")
}

// moduleFileName returns the module name of a module file, and false for
// other files.
func moduleFileName(file string) (string, bool) {
	base := path.Base(file)
	for _, suf := range moduleSuffixes {
		if name, ok := strings.CutSuffix(base, suf); ok {
			return moduleName(name), true
		}
	}
	return "", false
}

// moduleFiles maps module names to their files under dir. When two files
// give one name, the first in lexical order wins.
func moduleFiles(dir string) (map[string]string, error) {
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		name, ok := moduleFileName(p)
		if !ok {
			return nil
		}
		if _, seen := files[name]; !seen {
			rel, _ := filepath.Rel(dir, p)
			files[name] = filepath.ToSlash(rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list kernel modules: %w", err)
	}
	return files, nil
}

// builtinModules reads modules.builtin, which lists built-in modules by the
// path they would have had ("kernel/fs/ext4/ext4.ko"). A tree without one
// has none built in that anyone asked for.
func builtinModules(dir string) (map[string]bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, "modules.builtin"))
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read built-in module list: %w", err)
	}
	builtin := map[string]bool{}
	for _, line := range strings.Fields(string(b)) {
		if name, ok := moduleFileName(line); ok {
			builtin[name] = true
		}
	}
	return builtin, nil
}

// readModule reads and decompresses the module at rel in dir and parses
// its .modinfo.
func readModule(dir, rel string) (Module, error) {
	f, err := os.Open(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		return Module{}, fmt.Errorf("read kernel module: %w", err)
	}
	defer f.Close()
	data, err := decompressModule(f, rel)
	if err != nil {
		return Module{}, fmt.Errorf("read kernel module %s: %w", rel, err)
	}
	info, err := modinfo(data)
	if err != nil {
		return Module{}, fmt.Errorf("read kernel module %s: %w", rel, err)
	}
	name, _ := moduleFileName(rel)
	if n := info["name"]; n != "" {
		name = moduleName(n)
	}
	m := Module{Name: name, Path: rel, Data: data}
	for _, dep := range strings.Split(info["depends"], ",") {
		if dep != "" {
			m.Depends = append(m.Depends, moduleName(dep))
		}
	}
	return m, nil
}

// decompressModule returns the ELF image of a module file. The guest
// loads uncompressed images, so its kernel needs no
// CONFIG_MODULE_DECOMPRESS (Debian 12's cloud kernel does not have it).
func decompressModule(r io.Reader, name string) ([]byte, error) {
	switch {
	case strings.HasSuffix(name, ".xz"):
		xr, err := xz.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("xz: %w", err)
		}
		r = xr
	case strings.HasSuffix(name, ".gz"):
		gr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		defer gr.Close()
		r = gr
	}
	return io.ReadAll(r)
}

// modinfo returns the key=value strings of a module's .modinfo section.
// A key that appears more than once (alias=, firmware=) keeps its last value.
func modinfo(image []byte) (map[string]string, error) {
	f, err := elf.NewFile(bytes.NewReader(image))
	if err != nil {
		return nil, fmt.Errorf("not an ELF module: %w", err)
	}
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, errors.New("no .modinfo section")
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf(".modinfo: %w", err)
	}
	info := map[string]string{}
	for _, kv := range strings.Split(string(data), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			info[k] = v
		}
	}
	return info, nil
}

// ModuleFiles returns the initramfs files for mods, in load order: each
// module, decompressed, under /lib/modules/<release>/, and the list that
// tells guestinit what to load (protocol.ModuleList).
func ModuleFiles(release string, mods []Module) []File {
	files := make([]File, 0, len(mods)+1)
	var list strings.Builder
	for _, m := range mods {
		rel := m.Path
		for _, suf := range []string{".xz", ".gz"} {
			rel = strings.TrimSuffix(rel, suf)
		}
		p := path.Join("/lib/modules", release, rel)
		files = append(files, File{Path: p, Mode: 0o644, Data: m.Data})
		list.WriteString(p + "\n")
	}
	return append(files, File{Path: protocol.ModuleList, Mode: 0o644, Data: []byte(list.String())})
}
