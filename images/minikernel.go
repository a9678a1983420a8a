package images

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// MinimalKernelSourcePackage is the Debian package whose .deb holds the
// kernel source tarball (/usr/src/linux-source-6.1.tar.xz).
const MinimalKernelSourcePackage = "linux-source-6.1"

// ErrKernelSourceDownload marks a failure to download the kernel source
// package, usually no network or stale apt lists; callers such as tests may
// skip on it.
var ErrKernelSourceDownload = errors.New("could not download Debian's kernel source")

// minimalKernelFragment is the Kconfig fragment the minimal kernel is built
// with, on top of tinyconfig.
//
//go:embed kernelconfig/minimal-6.1.config
var minimalKernelFragment []byte

// MinimalKernelConfig returns the Kconfig fragment of the minimal kernel.
func MinimalKernelConfig() []byte { return bytes.Clone(minimalKernelFragment) }

// minimalKernelMakeFlags go on every make command line of the build and into
// the cache key. ARCH=x86_64 makes tinyconfig 64-bit; the build user and
// host make uname -v the same on every machine. The job count is left out:
// it does not change the result.
var minimalKernelMakeFlags = []string{"ARCH=x86_64", "KBUILD_BUILD_USER=vmm", "KBUILD_BUILD_HOST=vmm"}

// KernelBuild is one kernel build for MinimalKernelBuilder.Build.
type KernelBuild struct {
	Tarball   string    // the kernel source tarball (linux-source-X.tar.xz)
	Dir       string    // an empty directory to unpack and build in
	Fragment  string    // the Kconfig fragment file to merge over tinyconfig
	MakeFlags []string  // variables for every make command line
	Jobs      int       // make -j
	Log       io.Writer // all output of the build tools
}

// BuiltKernel is what a KernelBuild produced, as paths under its Dir.
type BuiltKernel struct {
	BzImage string // arch/x86/boot/bzImage
	Config  string // the final .config
	Release string // uname -r of the new kernel
}

// MinimalKernelBuilder builds the minimal kernel from Debian's kernel source
// package into a cache. Each step is a function so tests can run without
// apt, the network or a compiler.
type MinimalKernelBuilder struct {
	// Resolve finds the version of a (non-meta) package that apt would
	// download. It reads only local apt lists.
	Resolve func(ctx context.Context, name string) (DebPackage, error)
	// Download fetches pkg's .deb into dir and returns its path.
	Download func(ctx context.Context, pkg DebPackage, dir string) (string, error)
	// Extract unpacks the files of the .deb at deb under dir.
	Extract func(ctx context.Context, deb, dir string) error
	// Build configures and compiles the kernel.
	Build func(ctx context.Context, b KernelBuild) (BuiltKernel, error)
	// Fragment is the Kconfig fragment; MakeFlags go on every make line.
	// Both are part of the cache key.
	Fragment  []byte
	MakeFlags []string
	// Jobs is make's -j; 0 means one per CPU.
	Jobs int
}

// AptMinimalKernelBuilder returns a MinimalKernelBuilder using apt-cache,
// apt-get download, dpkg-deb, tar and the kernel's own make targets, with
// the project's fragment (kernelconfig/minimal-6.1.config).
func AptMinimalKernelBuilder() MinimalKernelBuilder {
	return MinimalKernelBuilder{
		Resolve:   aptCandidate,
		Download:  aptDownloadSource,
		Extract:   dpkgExtract,
		Build:     makeMinimalKernel,
		Fragment:  MinimalKernelConfig(),
		MakeFlags: minimalKernelMakeFlags,
	}
}

// MinimalKernel returns a minimal Linux 6.1 built from Debian's
// linux-source-6.1 with the project's config fragment, building it into
// cacheDir on first use (many minutes: download, unpack, compile). Later
// calls for the same source package, fragment and flags return at once.
// Version is the release (uname -r); ModulesDir is empty: the kernel has
// no modules.
func MinimalKernel(ctx context.Context, cacheDir string) (Kernel, error) {
	return AptMinimalKernelBuilder().Kernel(ctx, cacheDir)
}

// Cache layout under cacheDir/kernels:
//
//	index/<package>_<version>           holds the source .deb's sha256
//	minimal-sha256-<key>/bzImage        the kernel
//	minimal-sha256-<key>/config         its final .config
//	minimal-sha256-<key>/fragment.config the fragment it was built with
//	minimal-sha256-<key>/release        the release string
//	minimal-sha256-<key>/build.log      the build's output
//	logs/minimal-sha256-<key>.log       the output of the last failed build
//	.build-minimal-*                    a build in progress (under the lock)
//	.minimal-build.lock                 held while building
//
// key = sha256 over the source .deb's sha256, the make flags and the
// fragment. An entry is complete before it is renamed into place.
const (
	minimalEntryPrefix  = "minimal-sha256-"
	minimalBuildPrefix  = ".build-minimal-"
	minimalLockName     = ".minimal-build.lock"
	minimalLogsSubdir   = "logs"
	minimalImageName    = "bzImage"
	minimalConfigName   = "config"
	minimalFragmentName = "fragment.config"
	minimalLogName      = "build.log"
	minimalLogTailLines = 20
)

// Kernel returns the cached minimal kernel, building it first when the
// cache has none for the current source package, fragment and flags.
// Concurrent callers on one cache directory build it once: the others wait
// for the build lock and then find the entry.
func (b MinimalKernelBuilder) Kernel(ctx context.Context, cacheDir string) (Kernel, error) {
	pkg, err := b.Resolve(ctx, MinimalKernelSourcePackage)
	if err != nil {
		return Kernel{}, err
	}
	if strings.ContainsAny(pkg.Name+pkg.Version, "/\x00") || pkg.Name == "" || pkg.Version == "" {
		return Kernel{}, fmt.Errorf("resolve %s: bad package %q version %q", MinimalKernelSourcePackage, pkg.Name, pkg.Version)
	}
	root := filepath.Join(cacheDir, kernelCacheSubdir)
	indexPath := filepath.Join(root, "index", pkg.Name+"_"+pkg.Version)
	if k, err := b.cached(root, indexPath); err == nil {
		return k, nil
	}
	if err := os.MkdirAll(filepath.Dir(indexPath), 0o755); err != nil {
		return Kernel{}, fmt.Errorf("create kernel cache: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(root, minimalLockName))
	if err != nil {
		return Kernel{}, fmt.Errorf("lock the kernel cache: %w", err)
	}
	defer unlock()
	// Someone else may have built it while we waited for the lock.
	if k, err := b.cached(root, indexPath); err == nil {
		return k, nil
	}
	// Under the lock any build directory is a leftover of a killed build.
	old, _ := filepath.Glob(filepath.Join(root, minimalBuildPrefix+"*"))
	for _, d := range old {
		os.RemoveAll(d)
	}
	tmp, err := os.MkdirTemp(root, minimalBuildPrefix)
	if err != nil {
		return Kernel{}, fmt.Errorf("create kernel cache: %w", err)
	}
	defer os.RemoveAll(tmp)

	tarball, debDigest, err := b.fetchSource(ctx, pkg, tmp)
	if err != nil {
		return Kernel{}, err
	}
	if err := writeFileAtomic(indexPath, []byte(debDigest+"\n"), 0o644); err != nil {
		return Kernel{}, err
	}
	key := b.key(debDigest)
	final := filepath.Join(root, minimalEntryPrefix+key)
	if k, err := minimalKernelAt(final); err == nil {
		return k, nil // a rebuild of the package with identical bytes
	}
	entry := filepath.Join(tmp, "entry")
	if err := b.build(ctx, tarball, tmp, entry, filepath.Join(root, minimalLogsSubdir, minimalEntryPrefix+key+".log")); err != nil {
		return Kernel{}, err
	}
	if err := publish(entry, final); err != nil {
		return Kernel{}, err
	}
	return minimalKernelAt(final)
}

// cached returns the entry for the package that indexPath records, or an
// error when the index or the entry is missing.
func (b MinimalKernelBuilder) cached(root, indexPath string) (Kernel, error) {
	raw, err := os.ReadFile(indexPath)
	if err != nil {
		return Kernel{}, err
	}
	digest := strings.TrimSpace(string(raw))
	if digest == "" || strings.ContainsAny(digest, `/.`) {
		return Kernel{}, fmt.Errorf("bad kernel cache index %s", indexPath)
	}
	return minimalKernelAt(filepath.Join(root, minimalEntryPrefix+b.key(digest)))
}

// key is the cache key of a build of the source .deb with sha256 debDigest.
func (b MinimalKernelBuilder) key(debDigest string) string {
	h := sha256.New()
	fmt.Fprintf(h, "vmm minimal kernel v1\nsource-deb-sha256 %s\nmake", debDigest)
	for _, f := range b.MakeFlags {
		fmt.Fprintf(h, " %q", f)
	}
	fmt.Fprintf(h, "\nfragment %d\n", len(b.Fragment))
	h.Write(b.Fragment)
	return hex.EncodeToString(h.Sum(nil))
}

// fetchSource downloads and unpacks the source package under tmp and
// returns the tarball's path and the .deb's sha256.
func (b MinimalKernelBuilder) fetchSource(ctx context.Context, pkg DebPackage, tmp string) (tarball, digest string, err error) {
	dl, x := filepath.Join(tmp, "download"), filepath.Join(tmp, "deb")
	for _, d := range []string{dl, x} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return "", "", fmt.Errorf("create kernel cache: %w", err)
		}
	}
	deb, err := b.Download(ctx, pkg, dl)
	if err != nil {
		return "", "", err
	}
	if digest, err = sha256File(deb); err != nil {
		return "", "", fmt.Errorf("read downloaded %s: %w", pkg.Name, err)
	}
	if err := b.Extract(ctx, deb, x); err != nil {
		return "", "", err
	}
	os.Remove(deb) // 140 MB we no longer need
	tarballs, _ := filepath.Glob(filepath.Join(x, "usr", "src", "linux-source-*.tar.*"))
	if len(tarballs) != 1 {
		return "", "", fmt.Errorf("%s %s: want one usr/src/linux-source-*.tar.* in the package, found %d", pkg.Name, pkg.Version, len(tarballs))
	}
	return tarballs[0], digest, nil
}

// build runs the Build step in tmp/src with its output in tmp/build.log,
// checks the result and lays out a complete entry in entry. When it fails,
// the log is kept at failLog and the error names it.
func (b MinimalKernelBuilder) build(ctx context.Context, tarball, tmp, entry, failLog string) error {
	src, fragment, logPath := filepath.Join(tmp, "src"), filepath.Join(tmp, minimalFragmentName), filepath.Join(tmp, minimalLogName)
	if err := errors.Join(
		os.Mkdir(src, 0o755),
		os.Mkdir(entry, 0o755),
		os.WriteFile(fragment, b.Fragment, 0o644),
	); err != nil {
		return fmt.Errorf("create kernel build directory: %w", err)
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("create kernel build log: %w", err)
	}
	jobs := b.Jobs
	if jobs <= 0 {
		jobs = runtime.NumCPU()
	}
	start := time.Now()
	built, err := b.Build(ctx, KernelBuild{
		Tarball: tarball, Dir: src, Fragment: fragment,
		MakeFlags: b.MakeFlags, Jobs: jobs, Log: logFile,
	})
	if err == nil {
		err = checkBuiltConfig(b.Fragment, built.Config)
	}
	if err == nil && (built.Release == "" || strings.ContainsAny(built.Release, "/\n\x00")) {
		err = fmt.Errorf("bad kernel release %q", built.Release)
	}
	if err != nil {
		fmt.Fprintf(logFile, "\nvmm: build failed after %s: %v\n", time.Since(start).Round(time.Second), err)
		logFile.Close()
		return keepFailedLog(logPath, failLog, err)
	}
	fmt.Fprintf(logFile, "\nvmm: built %s in %s\n", built.Release, time.Since(start).Round(time.Second))
	if err := logFile.Close(); err != nil {
		return fmt.Errorf("write kernel build log: %w", err)
	}
	if err := errors.Join(
		os.Rename(built.BzImage, filepath.Join(entry, minimalImageName)),
		os.Rename(built.Config, filepath.Join(entry, minimalConfigName)),
		os.Rename(fragment, filepath.Join(entry, minimalFragmentName)),
		os.Rename(logPath, filepath.Join(entry, minimalLogName)),
		os.WriteFile(filepath.Join(entry, kernelReleaseName), []byte(built.Release+"\n"), 0o644),
	); err != nil {
		return fmt.Errorf("lay out kernel cache entry: %w", err)
	}
	return nil
}

// keepFailedLog moves a failed build's log to failLog and returns buildErr
// with the log's path and last lines.
func keepFailedLog(logPath, failLog string, buildErr error) error {
	tail := ""
	if raw, err := os.ReadFile(logPath); err == nil {
		tail = lastLines(strings.TrimRight(string(raw), "\n"), minimalLogTailLines)
		tail = strings.ReplaceAll(tail, "; ", "\n\t")
	}
	kept := logPath
	if err := os.MkdirAll(filepath.Dir(failLog), 0o755); err == nil && os.Rename(logPath, failLog) == nil {
		kept = failLog
	}
	return fmt.Errorf("build the minimal kernel: %w; build log %s ends:\n\t%s", buildErr, kept, tail)
}

func minimalKernelAt(entry string) (Kernel, error) {
	raw, err := os.ReadFile(filepath.Join(entry, kernelReleaseName))
	if err != nil {
		return Kernel{}, fmt.Errorf("read kernel cache entry: %w", err)
	}
	return Kernel{Path: filepath.Join(entry, minimalImageName), Version: strings.TrimSpace(string(raw))}, nil
}

// lockFile takes an exclusive flock on path, waiting until ctx is done.
// Locks die with their process, so a killed build leaves none behind.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// aptCandidate reads the version apt would install of name from the local
// apt lists.
func aptCandidate(ctx context.Context, name string) (DebPackage, error) {
	out, err := runTool(ctx, "", "apt-cache", "show", "--no-all-versions", name)
	if err != nil {
		return DebPackage{}, fmt.Errorf("could not find Debian's %s package: %w; run `apt-get update` first", name, err)
	}
	v, err := parseVersionField(out)
	if err != nil {
		return DebPackage{}, fmt.Errorf("apt-cache show %s: %w", name, err)
	}
	return DebPackage{Name: name, Version: v}, nil
}

// parseVersionField returns the Version of the first stanza.
func parseVersionField(stanza []byte) (string, error) {
	for _, line := range strings.Split(string(stanza), "\n") {
		if v, ok := strings.CutPrefix(line, "Version:"); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v), nil
		}
	}
	return "", errors.New("no Version field")
}

// aptDownloadSource fetches exactly pkg's version; apt-get verifies the
// .deb against the signed lists.
func aptDownloadSource(ctx context.Context, pkg DebPackage, dir string) (string, error) {
	if _, err := runTool(ctx, dir, "apt-get", "download", "-q", pkg.Name+"="+pkg.Version); err != nil {
		return "", fmt.Errorf("%w: %w; run `apt-get update` first, and check that Debian's mirrors can be reached", ErrKernelSourceDownload, err)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	if len(debs) != 1 {
		return "", fmt.Errorf("%w: apt-get download %s left %d .deb files, want 1", ErrKernelSourceDownload, pkg.Name, len(debs))
	}
	return debs[0], nil
}

// KernelBuildDebPackages are the Debian packages a minimal kernel build
// needs beyond a base system (tar, nice, perl-base and dpkg are essential):
// the compiler and host headers, flex and bison for Kconfig's parser, bc
// for timeconst.h, libelf-dev for objtool, xz-utils for the tarball and
// lz4 for the image. No libssl-dev: without modules and trusted keys
// nothing is signed.
var KernelBuildDebPackages = []string{"make", "gcc", "libc6-dev", "binutils", "flex", "bison", "bc", "libelf-dev", "xz-utils", "lz4"}

// kernelBuildTools are the commands makeMinimalKernel checks for first, so a
// missing one is reported by name rather than deep in the build log.
var kernelBuildTools = []string{"tar", "xz", "nice", "make", "gcc", "ld", "flex", "bison", "bc", "lz4", "perl"}

// makeMinimalKernel unpacks the tarball into b.Dir and runs, in the
// source tree: make tinyconfig, merge_config.sh -m with the fragment,
// make olddefconfig, make bzImage (at nice 10, so the build yields to
// running VMs).
func makeMinimalKernel(ctx context.Context, b KernelBuild) (BuiltKernel, error) {
	run := func(dir string, args ...string) error {
		fmt.Fprintf(b.Log, "vmm: $ %s\n", strings.Join(args, " "))
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Dir, cmd.Stdout, cmd.Stderr = dir, b.Log, b.Log
		// make's children must die with it when ctx ends.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = 10 * time.Second
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w", strings.Join(args, " "), err)
		}
		fmt.Fprintf(b.Log, "vmm: took %s\n", time.Since(start).Round(100*time.Millisecond))
		return nil
	}
	for _, tool := range kernelBuildTools {
		if _, err := exec.LookPath(tool); err != nil {
			return BuiltKernel{}, fmt.Errorf("%s not found: building the minimal kernel needs the Debian packages %s", tool, strings.Join(KernelBuildDebPackages, " "))
		}
	}
	if err := run(b.Dir, "tar", "-xf", b.Tarball); err != nil {
		return BuiltKernel{}, err
	}
	tops, _ := os.ReadDir(b.Dir)
	if len(tops) != 1 || !tops[0].IsDir() {
		return BuiltKernel{}, fmt.Errorf("%s: want one top directory, found %d entries", filepath.Base(b.Tarball), len(tops))
	}
	src := filepath.Join(b.Dir, tops[0].Name())
	makeArgs := func(targets ...string) []string {
		return append(append([]string{"nice", "-n", "10", "make", "-j", fmt.Sprint(max(b.Jobs, 1))}, b.MakeFlags...), targets...)
	}
	for _, step := range [][]string{
		makeArgs("tinyconfig"),
		// -m: only merge; olddefconfig then fills in the rest.
		{"scripts/kconfig/merge_config.sh", "-m", ".config", b.Fragment},
		makeArgs("olddefconfig"),
	} {
		if err := run(src, step...); err != nil {
			return BuiltKernel{}, err
		}
	}
	// A fragment olddefconfig overrode fails now, not after the compile.
	fragment, err := os.ReadFile(b.Fragment)
	if err != nil {
		return BuiltKernel{}, fmt.Errorf("read the config fragment: %w", err)
	}
	if err := checkBuiltConfig(fragment, filepath.Join(src, ".config")); err != nil {
		return BuiltKernel{}, err
	}
	if err := run(src, makeArgs("bzImage")...); err != nil {
		return BuiltKernel{}, err
	}
	release, err := os.ReadFile(filepath.Join(src, "include", "config", "kernel.release"))
	if err != nil {
		return BuiltKernel{}, fmt.Errorf("read the kernel release: %w", err)
	}
	return BuiltKernel{
		BzImage: filepath.Join(src, "arch", "x86", "boot", "bzImage"),
		Config:  filepath.Join(src, ".config"),
		Release: strings.TrimSpace(string(release)),
	}, nil
}

// checkBuiltConfig reports the fragment's options that the final .config
// at path does not have as asked: olddefconfig silently drops values whose
// dependencies are not met, and a dropped one is a mistake in the fragment.
func checkBuiltConfig(fragment []byte, path string) error {
	final, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read the final .config: %w", err)
	}
	if bad := configMismatches(fragment, final); len(bad) > 0 {
		return fmt.Errorf("the final .config does not have what the fragment asks: %s", strings.Join(bad, ", "))
	}
	return nil
}

var (
	configSetRE   = regexp.MustCompile(`^(CONFIG_[A-Za-z0-9_]+)=(.*)$`)
	configUnsetRE = regexp.MustCompile(`^# (CONFIG_[A-Za-z0-9_]+) is not set$`)
)

// parseKconfig maps each CONFIG_ option of a .config or fragment to its
// value; "n" for "# CONFIG_X is not set".
func parseKconfig(text []byte) map[string]string {
	opts := map[string]string{}
	for _, line := range strings.Split(string(text), "\n") {
		line = strings.TrimSpace(line)
		if m := configSetRE.FindStringSubmatch(line); m != nil {
			opts[m[1]] = m[2]
		} else if m := configUnsetRE.FindStringSubmatch(line); m != nil {
			opts[m[1]] = "n"
		}
	}
	return opts
}

// configMismatches lists "OPTION=want (got)" for each option of fragment
// that final has otherwise. An option absent from final is off.
func configMismatches(fragment, final []byte) []string {
	want, got := parseKconfig(fragment), parseKconfig(final)
	var bad []string
	for opt, w := range want {
		g, ok := got[opt]
		if !ok {
			g = "n"
		}
		if g != w {
			bad = append(bad, fmt.Sprintf("%s=%s (got %s)", opt, w, g))
		}
	}
	slices.Sort(bad)
	return bad
}
