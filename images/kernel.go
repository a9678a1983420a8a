package images

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Kernel is a Linux kernel ready to boot, with the modules of the same build.
type Kernel struct {
	Path       string // the bzImage (Debian's vmlinuz)
	Version    string // kernel release as uname -r prints it, e.g. 6.1.0-56-cloud-amd64
	ModulesDir string // that release's lib/modules tree
}

// DebPackage names one version of a Debian binary package.
type DebPackage struct {
	Name    string // e.g. linux-image-6.1.0-56-cloud-amd64
	Version string // e.g. 6.1.192-2
}

// ErrKernelDownload marks a failure to download the kernel package, usually
// no network or stale apt lists; callers such as tests may skip on it.
var ErrKernelDownload = errors.New("could not download Debian's cloud kernel")

// DebianCloudKernelPackage is the metapackage that depends on the newest
// cloud kernel build: no graphics or sound drivers, virtio built for VMs.
const DebianCloudKernelPackage = "linux-image-cloud-amd64"

// KernelFetcher provisions kernels from Debian packages into a cache. Each
// step is a function so tests can run without apt or the network.
type KernelFetcher struct {
	// Resolve maps a metapackage to the versioned kernel package it
	// depends on. It reads only local apt lists.
	Resolve func(ctx context.Context, meta string) (DebPackage, error)
	// Download fetches pkg's .deb into dir and returns its path.
	Download func(ctx context.Context, pkg DebPackage, dir string) (string, error)
	// Extract unpacks the files of the .deb at deb under dir.
	Extract func(ctx context.Context, deb, dir string) error
	// Stamp, if set, names the state of what Resolve reads (the apt
	// lists); ok is false when it cannot tell. While it is unchanged,
	// Fetch reuses the last resolution instead of calling Resolve.
	Stamp func() (stamp string, ok bool)
}

// AptKernelFetcher returns a KernelFetcher using apt-cache, apt-get download
// and dpkg-deb from the host.
func AptKernelFetcher() KernelFetcher {
	return KernelFetcher{Resolve: aptResolve, Download: aptDownload, Extract: dpkgExtract, Stamp: aptListsStamp}
}

// aptListsStamp is the apt lists directory's modification time: `apt-get
// update` renames new lists into it, which changes it.
func aptListsStamp() (string, bool) {
	fi, err := os.Stat("/var/lib/apt/lists")
	if err != nil {
		return "", false
	}
	return strconv.FormatInt(fi.ModTime().UnixNano(), 10), true
}

// resolve is Resolve, remembered under cacheDir while Stamp is unchanged:
// apt-cache takes about a second, longer than the rest of a run's start.
func (f KernelFetcher) resolve(ctx context.Context, cacheDir, meta string) (DebPackage, error) {
	if f.Stamp == nil || strings.ContainsAny(meta, "/\x00") {
		return f.Resolve(ctx, meta)
	}
	stamp, ok := f.Stamp()
	if !ok {
		return f.Resolve(ctx, meta)
	}
	memo := filepath.Join(cacheDir, kernelCacheSubdir, "resolved", meta)
	if b, err := os.ReadFile(memo); err == nil {
		if l := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"); len(l) == 3 && l[0] == stamp {
			return DebPackage{Name: l[1], Version: l[2]}, nil
		}
	}
	pkg, err := f.Resolve(ctx, meta)
	if err != nil {
		return pkg, err
	}
	// Best effort: without the memo the next run asks apt again.
	if os.MkdirAll(filepath.Dir(memo), 0o755) == nil {
		writeFileAtomic(memo, []byte(stamp+"\n"+pkg.Name+"\n"+pkg.Version+"\n"), 0o644)
	}
	return pkg, nil
}

// DebianCloudKernel returns Debian's current cloud kernel, downloading it
// into cacheDir on first use. Later calls for the same package version
// are served from the cache without touching the network.
func DebianCloudKernel(ctx context.Context, cacheDir string) (Kernel, error) {
	return AptKernelFetcher().Fetch(ctx, cacheDir, DebianCloudKernelPackage)
}

// Cache layout under cacheDir/kernels:
//
//	index/<package>_<version>   holds the .deb's sha256
//	sha256-<digest>/vmlinuz     the kernel
//	sha256-<digest>/modules/    lib/modules/<release>
//	sha256-<digest>/release     the release string
//
// An entry directory is complete before it is renamed into place, so a
// reader never sees half of one.
const (
	kernelCacheSubdir = "kernels"
	kernelImageName   = "vmlinuz"
	kernelModulesName = "modules"
	kernelReleaseName = "release"
	tmpPrefix         = ".tmp-"
	staleTmpAge       = time.Hour
)

// Fetch resolves meta to a kernel package and returns its cached kernel,
// downloading and unpacking the package first when it is not cached.
func (f KernelFetcher) Fetch(ctx context.Context, cacheDir, meta string) (Kernel, error) {
	pkg, err := f.resolve(ctx, cacheDir, meta)
	if err != nil {
		return Kernel{}, err
	}
	if strings.ContainsAny(pkg.Name+pkg.Version, "/\x00") || pkg.Name == "" || pkg.Version == "" {
		return Kernel{}, fmt.Errorf("resolve %s: bad package %q version %q", meta, pkg.Name, pkg.Version)
	}
	root := filepath.Join(cacheDir, kernelCacheSubdir)
	indexPath := filepath.Join(root, "index", pkg.Name+"_"+pkg.Version)
	if k, err := cachedKernel(root, indexPath); err == nil {
		return k, nil
	}
	if err := os.MkdirAll(filepath.Dir(indexPath), 0o755); err != nil {
		return Kernel{}, fmt.Errorf("create kernel cache: %w", err)
	}
	removeStaleTemps(root)
	removeStaleTemps(filepath.Dir(indexPath))

	tmp, err := os.MkdirTemp(root, tmpPrefix)
	if err != nil {
		return Kernel{}, fmt.Errorf("create kernel cache: %w", err)
	}
	defer os.RemoveAll(tmp)

	digest, err := f.unpack(ctx, pkg, tmp)
	if err != nil {
		return Kernel{}, err
	}
	entry := filepath.Join(root, "sha256-"+digest)
	if err := publish(filepath.Join(tmp, "entry"), entry); err != nil {
		return Kernel{}, err
	}
	if err := writeFileAtomic(indexPath, []byte(digest+"\n"), 0o644); err != nil {
		return Kernel{}, err
	}
	return kernelAt(entry)
}

// unpack downloads and extracts pkg under tmp and lays out a complete cache
// entry in tmp/entry. It returns the .deb's sha256.
func (f KernelFetcher) unpack(ctx context.Context, pkg DebPackage, tmp string) (string, error) {
	dl := filepath.Join(tmp, "download")
	x := filepath.Join(tmp, "extract")
	entry := filepath.Join(tmp, "entry")
	for _, d := range []string{dl, x, entry} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return "", fmt.Errorf("create kernel cache: %w", err)
		}
	}
	deb, err := f.Download(ctx, pkg, dl)
	if err != nil {
		return "", err
	}
	digest, err := sha256File(deb)
	if err != nil {
		return "", fmt.Errorf("read downloaded %s: %w", pkg.Name, err)
	}
	if err := f.Extract(ctx, deb, x); err != nil {
		return "", err
	}
	vmlinuz, release, err := findKernelImage(x)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", pkg.Name, pkg.Version, err)
	}
	modules, err := findModules(x, release)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", pkg.Name, pkg.Version, err)
	}
	if err := errors.Join(
		os.Rename(vmlinuz, filepath.Join(entry, kernelImageName)),
		os.Rename(modules, filepath.Join(entry, kernelModulesName)),
		os.WriteFile(filepath.Join(entry, kernelReleaseName), []byte(release+"\n"), 0o644),
	); err != nil {
		return "", fmt.Errorf("lay out kernel cache entry: %w", err)
	}
	return digest, nil
}

// cachedKernel returns the kernel that indexPath points to, or an error when
// the index or the entry is missing.
func cachedKernel(root, indexPath string) (Kernel, error) {
	b, err := os.ReadFile(indexPath)
	if err != nil {
		return Kernel{}, err
	}
	digest := strings.TrimSpace(string(b))
	if digest == "" || strings.ContainsAny(digest, `/.`) {
		return Kernel{}, fmt.Errorf("bad kernel cache index %s", indexPath)
	}
	return kernelAt(filepath.Join(root, "sha256-"+digest))
}

func kernelAt(entry string) (Kernel, error) {
	b, err := os.ReadFile(filepath.Join(entry, kernelReleaseName))
	if err != nil {
		return Kernel{}, fmt.Errorf("read kernel cache entry: %w", err)
	}
	return Kernel{
		Path:       filepath.Join(entry, kernelImageName),
		Version:    strings.TrimSpace(string(b)),
		ModulesDir: filepath.Join(entry, kernelModulesName),
	}, nil
}

// findKernelImage finds the one boot/vmlinuz-<release> in an unpacked
// kernel package.
func findKernelImage(root string) (path, release string, err error) {
	matches, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if len(matches) != 1 {
		return "", "", fmt.Errorf("want one boot/vmlinuz-* in the package, found %d", len(matches))
	}
	return matches[0], strings.TrimPrefix(filepath.Base(matches[0]), "vmlinuz-"), nil
}

// findModules finds lib/modules/<release>; usr-merged releases (Debian 13)
// ship it under usr/lib.
func findModules(root, release string) (string, error) {
	for _, d := range []string{"lib", "usr/lib"} {
		p := filepath.Join(root, d, "modules", release)
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("no lib/modules/%s in the package", release)
}

// removeStaleTemps deletes leftovers of interrupted runs. Young ones may
// belong to a concurrent caller and are left alone.
func removeStaleTemps(root string) {
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), tmpPrefix) {
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > staleTmpAge {
			os.RemoveAll(filepath.Join(root, e.Name()))
		}
	}
}
