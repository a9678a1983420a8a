package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

const fakeRelease = "6.1.0-99-cloud-amd64"

// fakeApt stands in for apt: it "downloads" a .deb whose bytes are deb and
// "extracts" a kernel package tree, counting downloads.
type fakeApt struct {
	pkg       DebPackage
	deb       string
	downloads atomic.Int32
	dlErr     error
}

func (f *fakeApt) fetcher() KernelFetcher {
	return KernelFetcher{
		Resolve: func(context.Context, string) (DebPackage, error) { return f.pkg, nil },
		Download: func(_ context.Context, pkg DebPackage, dir string) (string, error) {
			f.downloads.Add(1)
			if f.dlErr != nil {
				return "", f.dlErr
			}
			p := filepath.Join(dir, pkg.Name+".deb")
			return p, os.WriteFile(p, []byte(f.deb), 0o644)
		},
		Extract: func(_ context.Context, _, dir string) error {
			return writeKernelTree(dir, "lib")
		},
	}
}

func writeKernelTree(dir, libDir string) error {
	ko := filepath.Join(dir, libDir, "modules", fakeRelease, "kernel", "virtio_blk.ko")
	return errors.Join(
		os.MkdirAll(filepath.Join(dir, "boot"), 0o755),
		os.MkdirAll(filepath.Dir(ko), 0o755),
		os.WriteFile(filepath.Join(dir, "boot", "vmlinuz-"+fakeRelease), []byte("bzImage"), 0o644),
		os.WriteFile(ko, []byte("ko"), 0o644),
	)
}

func newFakeApt() *fakeApt {
	return &fakeApt{pkg: DebPackage{Name: "linux-image-" + fakeRelease, Version: "6.1.999-1"}, deb: "deb bytes"}
}

func TestFetch_SecondCall_ServedFromCache(t *testing.T) {
	cache, apt := t.TempDir(), newFakeApt()
	first, err := apt.fetcher().Fetch(context.Background(), cache, "meta")
	if err != nil {
		t.Fatal(err)
	}
	second, err := apt.fetcher().Fetch(context.Background(), cache, "meta")
	if err != nil {
		t.Fatal(err)
	}
	if n := apt.downloads.Load(); n != 1 {
		t.Errorf("downloads = %d, want 1", n)
	}
	if first != second || first.Version != fakeRelease {
		t.Errorf("kernels = %+v then %+v, want the same with release %s", first, second, fakeRelease)
	}
	if b, err := os.ReadFile(first.Path); err != nil || string(b) != "bzImage" {
		t.Errorf("kernel image = %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(first.ModulesDir, "kernel", "virtio_blk.ko")); err != nil {
		t.Errorf("modules tree: %v", err)
	}
}

func TestFetch_EntryKeyedByDebDigest(t *testing.T) {
	cache, apt := t.TempDir(), newFakeApt()
	a, err := apt.fetcher().Fetch(context.Background(), cache, "meta")
	if err != nil {
		t.Fatal(err)
	}
	apt.pkg.Version = "6.1.999-2" // a rebuild with identical bytes
	b, err := apt.fetcher().Fetch(context.Background(), cache, "meta")
	if err != nil {
		t.Fatal(err)
	}
	apt.pkg.Version, apt.deb = "6.1.999-3", "other bytes"
	c, err := apt.fetcher().Fetch(context.Background(), cache, "meta")
	if err != nil {
		t.Fatal(err)
	}
	if a.Path != b.Path || a.Path == c.Path {
		t.Errorf("paths %s, %s, %s: want the first two equal and the third different", a.Path, b.Path, c.Path)
	}
	sum := sha256.Sum256([]byte("deb bytes"))
	if got, want := filepath.Base(filepath.Dir(a.Path)), "sha256-"+hex.EncodeToString(sum[:]); got != want {
		t.Errorf("entry %s, want %s", got, want)
	}
}

func TestFetch_DownloadFails_NothingCached(t *testing.T) {
	cache, apt := t.TempDir(), newFakeApt()
	apt.dlErr = fmt.Errorf("%w: no network", ErrKernelDownload)
	_, err := apt.fetcher().Fetch(context.Background(), cache, "meta")
	if !errors.Is(err, ErrKernelDownload) {
		t.Fatalf("err = %v, want ErrKernelDownload", err)
	}
	left, _ := filepath.Glob(filepath.Join(cache, "kernels", "*"))
	index, _ := filepath.Glob(filepath.Join(cache, "kernels", "index", "*"))
	if len(left) != 1 || len(index) != 0 {
		t.Fatalf("cache after a failed download holds %v and %v, want only an empty index dir", left, index)
	}
}

func TestFetch_EntryDeleted_DownloadsAgain(t *testing.T) {
	cache, apt := t.TempDir(), newFakeApt()
	k, err := apt.fetcher().Fetch(context.Background(), cache, "meta")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Dir(k.Path)); err != nil {
		t.Fatal(err)
	}
	if _, err := apt.fetcher().Fetch(context.Background(), cache, "meta"); err != nil {
		t.Fatal(err)
	}
	if n := apt.downloads.Load(); n != 2 {
		t.Errorf("downloads = %d, want 2", n)
	}
}

func TestFetch_ConcurrentCallers_OneCompleteEntry(t *testing.T) {
	cache, apt := t.TempDir(), newFakeApt()
	const callers = 8
	kernels := make([]Kernel, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { kernels[i], errs[i] = apt.fetcher().Fetch(context.Background(), cache, "meta") })
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
	entries, _ := filepath.Glob(filepath.Join(cache, "kernels", "*"))
	if len(entries) != 2 { // index/ and one sha256-*/
		t.Fatalf("cache holds %v, want index and one entry, no temporaries", entries)
	}
}

// The real extract step, on a .deb built here with dpkg-deb.
func TestFetch_RealDpkgDeb_UsrMergedModules(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skipf("SKIP: dpkg-deb not found: %v (it is part of every Debian system)", err)
	}
	tree := t.TempDir()
	control := "Package: fake-kernel\nVersion: 1\nArchitecture: amd64\nMaintainer: t <t@t>\nDescription: fake\n"
	if err := errors.Join(
		writeKernelTree(tree, "usr/lib"),
		os.MkdirAll(filepath.Join(tree, "DEBIAN"), 0o755),
		os.WriteFile(filepath.Join(tree, "DEBIAN", "control"), []byte(control), 0o644),
	); err != nil {
		t.Fatal(err)
	}
	deb := filepath.Join(t.TempDir(), "fake.deb")
	if out, err := exec.Command("dpkg-deb", "--root-owner-group", "-b", tree, deb).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -b: %v: %s", err, out)
	}
	f := AptKernelFetcher()
	f.Resolve = newFakeApt().fetcher().Resolve
	f.Download = func(context.Context, DebPackage, string) (string, error) { return deb, nil }

	k, err := f.Fetch(context.Background(), t.TempDir(), "meta")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(k.ModulesDir, "kernel", "virtio_blk.ko")); err != nil || k.Version != fakeRelease {
		t.Fatalf("kernel %+v: modules: %v", k, err)
	}
}

func TestCacheDir(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", "/x/cache")
	if d, err := CacheDir(); err != nil || d != "/x/cache/vmm" {
		t.Errorf("with XDG_CACHE_HOME: CacheDir() = %q, %v", d, err)
	}
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "/home/u")
	if d, err := CacheDir(); err != nil || d != "/home/u/.cache/vmm" {
		t.Errorf("with HOME: CacheDir() = %q, %v", d, err)
	}
}

// While the apt lists are unchanged, Fetch does not ask apt again; an
// `apt-get update` (a new stamp) makes it resolve afresh.
func TestFetch_ResolutionRememberedWhileListsUnchanged(t *testing.T) {
	cache, apt := t.TempDir(), newFakeApt()
	var resolves atomic.Int32
	stamp := "1"
	f := apt.fetcher()
	f.Resolve = func(context.Context, string) (DebPackage, error) {
		resolves.Add(1)
		return apt.pkg, nil
	}
	f.Stamp = func() (string, bool) { return stamp, true }
	for i := range 3 {
		if _, err := f.Fetch(context.Background(), cache, DebianCloudKernelPackage); err != nil {
			t.Fatalf("fetch %d: %v", i, err)
		}
	}
	if n := resolves.Load(); n != 1 {
		t.Fatalf("%d resolutions for three fetches with unchanged lists, want 1", n)
	}
	stamp = "2"
	if _, err := f.Fetch(context.Background(), cache, DebianCloudKernelPackage); err != nil {
		t.Fatal(err)
	}
	if n := resolves.Load(); n != 2 {
		t.Fatalf("%d resolutions after the lists changed, want 2", n)
	}
}
