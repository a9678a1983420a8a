package images

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const fakeMinimalRelease = "6.1.999-vmm-minimal"

// fakeKernelBuild stands in for apt and the kernel build: the "source
// package" holds a fake tarball, and a "build" writes a bzImage and a
// .config that satisfies the fragment, counting builds.
type fakeKernelBuild struct {
	deb       string
	builds    atomic.Int32
	buildErr  error
	dropFinal string        // an option the "build" leaves out of .config
	delay     time.Duration // how long a build takes
}

func (f *fakeKernelBuild) builder() MinimalKernelBuilder {
	return MinimalKernelBuilder{
		Resolve: func(_ context.Context, name string) (DebPackage, error) {
			return DebPackage{Name: name, Version: "6.1.999-1"}, nil
		},
		Download: func(_ context.Context, pkg DebPackage, dir string) (string, error) {
			p := filepath.Join(dir, pkg.Name+".deb")
			return p, os.WriteFile(p, []byte(f.deb), 0o644)
		},
		Extract: func(_ context.Context, _, dir string) error {
			src := filepath.Join(dir, "usr", "src")
			return errors.Join(os.MkdirAll(src, 0o755),
				os.WriteFile(filepath.Join(src, "linux-source-6.1.tar.xz"), []byte("tarball"), 0o644))
		},
		Build:     f.build,
		Fragment:  []byte("# why\nCONFIG_HZ_100=y\n# CONFIG_SMP is not set\nCONFIG_LOCALVERSION=\"-vmm-minimal\"\n"),
		MakeFlags: []string{"ARCH=x86_64"},
		Jobs:      1,
	}
}

func (f *fakeKernelBuild) build(_ context.Context, b KernelBuild) (BuiltKernel, error) {
	f.builds.Add(1)
	time.Sleep(f.delay)
	fmt.Fprintf(b.Log, "  CC      kernel/fork.o\n  LD      vmlinux\n")
	if f.buildErr != nil {
		fmt.Fprintf(b.Log, "make: *** [Makefile:1] Error 2\n")
		return BuiltKernel{}, f.buildErr
	}
	if tb, err := os.ReadFile(b.Tarball); err != nil || string(tb) != "tarball" {
		return BuiltKernel{}, fmt.Errorf("tarball %q, %v", tb, err)
	}
	frag, err := os.ReadFile(b.Fragment)
	if err != nil {
		return BuiltKernel{}, err
	}
	var cfg bytes.Buffer
	cfg.WriteString("CONFIG_64BIT=y\n")
	for _, l := range strings.Split(string(frag), "\n") {
		if l != "" && !strings.HasPrefix(l, "# why") && (f.dropFinal == "" || !strings.Contains(l, f.dropFinal)) {
			cfg.WriteString(l + "\n")
		}
	}
	p := func(n string) string { return filepath.Join(b.Dir, n) }
	return BuiltKernel{BzImage: p("bzImage"), Config: p(".config"), Release: fakeMinimalRelease}, errors.Join(
		os.WriteFile(p("bzImage"), []byte("bzImage"), 0o644),
		os.WriteFile(p(".config"), cfg.Bytes(), 0o644),
	)
}

func newFakeKernelBuild() *fakeKernelBuild { return &fakeKernelBuild{deb: "source deb"} }

func TestMinimalKernel_SecondCall_ServedFromCache(t *testing.T) {
	cache, fb := t.TempDir(), newFakeKernelBuild()
	first, err := fb.builder().Kernel(context.Background(), cache)
	if err != nil {
		t.Fatal(err)
	}
	b := fb.builder()
	b.Download = func(context.Context, DebPackage, string) (string, error) {
		return "", errors.New("the second call must not download")
	}
	second, err := b.Kernel(context.Background(), cache)
	if err != nil {
		t.Fatal(err)
	}
	if n := fb.builds.Load(); n != 1 {
		t.Errorf("builds = %d, want 1", n)
	}
	if first != second || first.Version != fakeMinimalRelease || first.ModulesDir != "" {
		t.Errorf("kernels = %+v then %+v, want the same, release %s, no modules", first, second, fakeMinimalRelease)
	}
	entry := filepath.Dir(first.Path)
	if !strings.HasPrefix(filepath.Base(entry), minimalEntryPrefix) || filepath.Base(first.Path) != "bzImage" {
		t.Errorf("kernel at %s, want kernels/%s*/bzImage", first.Path, minimalEntryPrefix)
	}
	for name, want := range map[string]string{
		"bzImage": "bzImage", "fragment.config": string(b.Fragment), "release": fakeMinimalRelease + "\n",
	} {
		if got, err := os.ReadFile(filepath.Join(entry, name)); err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
	if log, err := os.ReadFile(filepath.Join(entry, "build.log")); err != nil || !strings.Contains(string(log), "LD      vmlinux") {
		t.Errorf("build.log = %q, %v", log, err)
	}
	if cfg, err := os.ReadFile(filepath.Join(entry, "config")); err != nil || !strings.Contains(string(cfg), "CONFIG_HZ_100=y") {
		t.Errorf("config = %q, %v", cfg, err)
	}
	if left, _ := filepath.Glob(filepath.Join(cache, "kernels", minimalBuildPrefix+"*")); len(left) != 0 {
		t.Errorf("build directories left behind: %v", left)
	}
}

func TestMinimalKernel_KeyedBySourceFragmentAndFlags(t *testing.T) {
	cache, fb := t.TempDir(), newFakeKernelBuild()
	path := func(b MinimalKernelBuilder) string {
		t.Helper()
		k, err := b.Kernel(context.Background(), cache)
		if err != nil {
			t.Fatal(err)
		}
		return k.Path
	}
	base := path(fb.builder())
	frag := fb.builder()
	frag.Fragment = append(frag.Fragment, "CONFIG_PRINTK_TIME=y\n"...)
	flags := fb.builder()
	flags.MakeFlags = append(flags.MakeFlags, "KBUILD_BUILD_USER=x")
	jobs := fb.builder()
	jobs.Jobs = 7
	got := []string{path(frag), path(flags), path(jobs)}
	fb.deb = "another source deb"
	src := fb.builder()
	src.Resolve = func(_ context.Context, name string) (DebPackage, error) {
		return DebPackage{Name: name, Version: "6.1.999-2"}, nil
	}
	got = append(got, path(src))
	if got[0] == base || got[1] == base || got[3] == base || got[0] == got[1] {
		t.Errorf("fragment, flags or source change kept the entry: base %s, got %v", base, got)
	}
	if got[2] != base {
		t.Errorf("the job count changed the entry: %s, want %s", got[2], base)
	}
	if n := fb.builds.Load(); n != 4 {
		t.Errorf("builds = %d, want 4", n)
	}
}

func TestMinimalKernel_ConcurrentCallers_BuildOnce(t *testing.T) {
	cache, fb := t.TempDir(), newFakeKernelBuild()
	fb.delay = 300 * time.Millisecond
	const callers = 6
	kernels := make([]Kernel, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { kernels[i], errs[i] = fb.builder().Kernel(context.Background(), cache) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for _, k := range kernels {
		if k != kernels[0] {
			t.Fatalf("callers got different kernels: %+v and %+v", k, kernels[0])
		}
	}
	if n := fb.builds.Load(); n != 1 {
		t.Errorf("builds = %d, want 1: waiters should find the first caller's entry", n)
	}
	entries, _ := filepath.Glob(filepath.Join(cache, "kernels", minimalEntryPrefix+"*"))
	temps, _ := filepath.Glob(filepath.Join(cache, "kernels", ".build-*"))
	if len(entries) != 1 || len(temps) != 0 {
		t.Errorf("cache holds entries %v and temporaries %v, want one entry", entries, temps)
	}
}

func TestMinimalKernel_LockWait_HonoursContext(t *testing.T) {
	cache := t.TempDir()
	root := filepath.Join(cache, "kernels")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	unlock, err := lockFile(context.Background(), filepath.Join(root, minimalLockName))
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	// flock locks belong to open file descriptions, so a second open in
	// this process contends like another process would.
	_, err = newFakeKernelBuild().builder().Kernel(ctx, cache)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's deadline while another build holds the lock", err)
	}
}

func TestMinimalKernel_BuildFails_ErrorNamesLog(t *testing.T) {
	cache, fb := t.TempDir(), newFakeKernelBuild()
	fb.buildErr = errors.New("make bzImage: exit status 2")
	_, err := fb.builder().Kernel(context.Background(), cache)
	if err == nil {
		t.Fatal("no error from a failed build")
	}
	logs, _ := filepath.Glob(filepath.Join(cache, "kernels", "logs", minimalEntryPrefix+"*.log"))
	if len(logs) != 1 {
		t.Fatalf("failure logs %v, want one", logs)
	}
	msg := err.Error()
	for _, want := range []string{logs[0], "exit status 2", "make: *** [Makefile:1] Error 2", "LD      vmlinux"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if entries, _ := filepath.Glob(filepath.Join(cache, "kernels", minimalEntryPrefix+"*")); len(entries) != 0 {
		t.Errorf("a failed build published %v", entries)
	}
	fb.buildErr = nil
	if _, err := fb.builder().Kernel(context.Background(), cache); err != nil {
		t.Fatalf("retry after a failure: %v", err)
	}
	if n := fb.builds.Load(); n != 2 {
		t.Errorf("builds = %d, want 2", n)
	}
}

func TestMinimalKernel_OptionDroppedByOlddefconfig_Fails(t *testing.T) {
	cache, fb := t.TempDir(), newFakeKernelBuild()
	fb.dropFinal = "CONFIG_HZ_100"
	_, err := fb.builder().Kernel(context.Background(), cache)
	if err == nil || !strings.Contains(err.Error(), "CONFIG_HZ_100=y (got n)") {
		t.Fatalf("err = %v, want it to name CONFIG_HZ_100", err)
	}
	if entries, _ := filepath.Glob(filepath.Join(cache, "kernels", minimalEntryPrefix+"*")); len(entries) != 0 {
		t.Errorf("a build with a wrong .config was published: %v", entries)
	}
}

func TestConfigMismatches(t *testing.T) {
	frag := []byte("# comment\nCONFIG_A=y\n# CONFIG_B is not set\n# CONFIG_GONE is not set\nCONFIG_S=\"x\"\nCONFIG_N=1\n")
	final := []byte("CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_S=\"x\"\nCONFIG_N=2\n")
	got := configMismatches(frag, final)
	if want := []string{"CONFIG_N=1 (got 2)"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("configMismatches = %q, want %q", got, want)
	}
}

func TestParseVersionField(t *testing.T) {
	v, err := parseVersionField([]byte("Package: linux-source-6.1\nSource: linux\nVersion: 6.1.192-2\nInstalled-Size: 1\n"))
	if err != nil || v != "6.1.192-2" {
		t.Errorf("parseVersionField = %q, %v", v, err)
	}
	if _, err := parseVersionField([]byte("Package: x\n")); err == nil {
		t.Error("no error without a Version field")
	}
}

// minimalKernelMust is what the fragment must ask for: the options the
// minimal kernel exists for (serial console, initramfs, what guestinit
// needs, few timer ticks, nothing the emulator cannot run).
var minimalKernelMust = map[string]string{
	"CONFIG_64BIT": "y", "CONFIG_PRINTK": "y", "CONFIG_EARLY_PRINTK": "y", "CONFIG_PRINTK_TIME": "y",
	"CONFIG_TTY": "y", "CONFIG_SERIAL_8250": "y", "CONFIG_SERIAL_8250_CONSOLE": "y",
	"CONFIG_BLK_DEV_INITRD": "y", "CONFIG_RD_GZIP": "y", "CONFIG_BINFMT_ELF": "y", "CONFIG_BINFMT_SCRIPT": "y",
	"CONFIG_PROC_FS": "y", "CONFIG_SYSFS": "y", "CONFIG_DEVTMPFS": "y", "CONFIG_DEVTMPFS_MOUNT": "y", "CONFIG_TMPFS": "y",
	"CONFIG_FUTEX": "y", "CONFIG_EPOLL": "y", "CONFIG_EVENTFD": "y", "CONFIG_MULTIUSER": "y",
	"CONFIG_HZ_100": "y", "CONFIG_NO_HZ_IDLE": "y", "CONFIG_HIGH_RES_TIMERS": "y",
	"CONFIG_HYPERVISOR_GUEST": "y", "CONFIG_PARAVIRT": "y", "CONFIG_KVM_GUEST": "y",
	"CONFIG_CPU_SUP_INTEL": "y", "CONFIG_CPU_SUP_AMD": "y", "CONFIG_KERNEL_LZ4": "y",
	"CONFIG_SMP": "y", "CONFIG_ACPI": "y", "CONFIG_PCI": "y", "CONFIG_PCI_MSI": "y",
	"CONFIG_VIRTIO_PCI": "y", "CONFIG_VIRTIO_BLK": "y", "CONFIG_VIRTIO_NET": "y", "CONFIG_HW_RANDOM_VIRTIO": "y",
	"CONFIG_NET": "y", "CONFIG_INET": "y", "CONFIG_BLOCK": "y",
	"CONFIG_MODULES": "n", "CONFIG_RANDOMIZE_BASE": "n",
	"CONFIG_CPU_MITIGATIONS": "n", "CONFIG_RETPOLINE": "n", "CONFIG_PAGE_TABLE_ISOLATION": "n",
	"CONFIG_X86_UMIP": "n", "CONFIG_X86_KERNEL_IBT": "n", "CONFIG_CRYPTO": "n",
}

func TestMinimalKernelConfig_AsksForWhatTheGuestNeeds(t *testing.T) {
	frag := parseKconfig(MinimalKernelConfig())
	for opt, want := range minimalKernelMust {
		if got, ok := frag[opt]; !ok || got != want {
			t.Errorf("fragment has %s=%q (present %v), want %q", opt, got, ok, want)
		}
	}
}

// Every option line in the fragment says why, in a comment just above it.
func TestMinimalKernelConfig_EveryOptionExplained(t *testing.T) {
	lines := strings.Split(string(MinimalKernelConfig()), "\n")
	commented := false
	for i, l := range lines {
		isOpt := configSetRE.MatchString(l) || configUnsetRE.MatchString(l)
		switch {
		case isOpt && !commented:
			t.Errorf("line %d %q has no comment above it", i+1, l)
		case l == "":
			commented = false
		case !isOpt && strings.HasPrefix(l, "#"):
			commented = true
		}
	}
}

// The cached minimal kernels on this machine, if any were built
// (MinimalKernel, or VMM_TEST_BUILD_MINIMAL_KERNEL=1 below): their final
// .config has what the fragment asked for, and bzImage is one.
func TestMinimalKernel_CachedBuildsHaveTheConfig(t *testing.T) {
	cache, err := CacheDir()
	if err != nil {
		t.Skipf("SKIP: %v", err)
	}
	entries, _ := filepath.Glob(filepath.Join(cache, "kernels", minimalEntryPrefix+"*"))
	if len(entries) == 0 {
		t.Skipf("SKIP: no minimal kernel in %s (images.MinimalKernel builds one)", cache)
	}
	for _, e := range entries {
		checkMinimalEntry(t, e)
	}
}

func checkMinimalEntry(t *testing.T, entry string) {
	t.Helper()
	final, err := os.ReadFile(filepath.Join(entry, "config"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := parseKconfig(final)
	// What every build of the fragment has had; choices that changed over
	// time (SMP, ACPI, ...) are checked against the fragment below.
	for opt, want := range map[string]string{
		"CONFIG_64BIT": "y", "CONFIG_HZ": "100", "CONFIG_HZ_100": "y", "CONFIG_NO_HZ_IDLE": "y",
		"CONFIG_SERIAL_8250_CONSOLE": "y", "CONFIG_BLK_DEV_INITRD": "y", "CONFIG_KVM_GUEST": "y",
		"CONFIG_PARAVIRT_CLOCK": "y", "CONFIG_KERNEL_LZ4": "y", "CONFIG_MODULES": "n",
		"CONFIG_X86_UMIP": "n", "CONFIG_X86_SMAP": "n", "CONFIG_RANDOMIZE_BASE": "n",
		"CONFIG_RETPOLINE": "n", "CONFIG_CPU_MITIGATIONS": "n",
	} {
		got, ok := cfg[opt]
		if !ok {
			got = "n"
		}
		if got != want {
			t.Errorf("%s: %s=%s, want %s", entry, opt, got, want)
		}
	}
	if frag, err := os.ReadFile(filepath.Join(entry, minimalFragmentName)); err == nil && bytes.Equal(frag, MinimalKernelConfig()) {
		if bad := configMismatches(frag, final); len(bad) > 0 {
			t.Errorf("%s: final .config differs from the fragment: %v", entry, bad)
		}
	}
	img, err := os.ReadFile(filepath.Join(entry, "bzImage"))
	if err != nil {
		t.Fatal(err)
	}
	// boot.rst: the setup header's magic "HdrS" is at 0x202.
	if len(img) < 0x206 || string(img[0x202:0x206]) != "HdrS" {
		t.Errorf("%s/bzImage is not a bzImage", entry)
	}
	if rel, err := os.ReadFile(filepath.Join(entry, "release")); err != nil || !strings.HasSuffix(strings.TrimSpace(string(rel)), "-vmm-minimal") {
		t.Errorf("%s: release %q, %v", entry, rel, err)
	}
}

// The real build, end to end: download, unpack, configure, compile. It
// takes many minutes, so it runs only when asked.
func TestMinimalKernel_RealBuild(t *testing.T) {
	if os.Getenv("VMM_TEST_BUILD_MINIMAL_KERNEL") != "1" {
		t.Skip("SKIP: set VMM_TEST_BUILD_MINIMAL_KERNEL=1 to build the minimal kernel (minutes)")
	}
	cache, err := CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	k, err := MinimalKernel(context.Background(), cache)
	if errors.Is(err, ErrKernelSourceDownload) {
		t.Skipf("SKIP: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("minimal kernel %s at %s", k.Version, k.Path)
	checkMinimalEntry(t, filepath.Dir(k.Path))
}
