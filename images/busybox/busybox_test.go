package busybox

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/vmm-dev/vmm/images"
)

// fakeScript stands in for the busybox binary: a shell script that prints
// an applet list with the shell's own printf, so it runs with PATH empty.
const fakeScript = "#!/bin/sh\nprintf '%s\\n' ls sh '[' busybox sh\n"

// fakeDebs stands in for apt: it "downloads" a .deb holding deb and
// "extracts" a busybox-static tree whose binary is script.
type fakeDebs struct {
	deb, script string
	downloads   atomic.Int32
	err         error
}

func newFakeDebs() *fakeDebs { return &fakeDebs{deb: "deb bytes", script: fakeScript} }

func (f *fakeDebs) fetcher() images.DebFetcher {
	return images.DebFetcher{
		Download: func(_ context.Context, name, dir string) (string, images.DebPackage, error) {
			f.downloads.Add(1)
			if f.err != nil {
				return "", images.DebPackage{}, f.err
			}
			p := filepath.Join(dir, name+".deb")
			return p, images.DebPackage{Name: name, Version: "1:1.0-1"}, os.WriteFile(p, []byte(f.deb), 0o644)
		},
		Extract: func(_ context.Context, _, dir string) error {
			bin := filepath.Join(dir, binaryPath)
			return errors.Join(os.MkdirAll(filepath.Dir(bin), 0o755), os.WriteFile(bin, []byte(f.script), 0o755))
		},
	}
}

// noApt fails the test if the image build reaches for apt at all.
func noApt(t *testing.T) images.DebFetcher {
	return images.DebFetcher{
		Download: func(context.Context, string, string) (string, images.DebPackage, error) {
			t.Error("Download called on a cache hit")
			return "", images.DebPackage{}, errors.New("no apt")
		},
		Extract: func(context.Context, string, string) error {
			t.Error("Extract called on a cache hit")
			return errors.New("no apt")
		},
	}
}

// tarEntry is a header read back from the layer, with the file's data.
type tarEntry struct {
	tar.Header
	body string
}

// layerEntries reads img's one layer back, in order.
func layerEntries(t *testing.T, img v1.Image) []tarEntry {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v; want one", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var out []tarEntry
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarEntry{Header: *h, body: string(b)})
	}
}

func digestOf(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// describe renders an entry as "name type mode uid:gid [-> target] [body]".
func describe(e tarEntry) string {
	s := fmt.Sprintf("%s %c %04o %d:%d", e.Name, e.Typeflag, e.Mode, e.Uid, e.Gid)
	if e.Linkname != "" {
		s += " -> " + e.Linkname
	}
	if e.body != "" && e.Name != binaryPath {
		s += " " + strings.ReplaceAll(e.body, "\n", "|")
	}
	return s
}

func TestImage_Layout(t *testing.T) {
	img, err := imageFrom(context.Background(), newFakeDebs().fetcher(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range layerEntries(t, img) {
		got = append(got, describe(e))
		if !e.ModTime.Equal(epoch()) || e.Uname != "" || e.Gname != "" {
			t.Errorf("%s: mtime %v, owner names %q:%q; want the epoch and none", e.Name, e.ModTime, e.Uname, e.Gname)
		}
		if e.Name == binaryPath && e.body != fakeScript {
			t.Errorf("%s holds %q, want the package's binary", e.Name, e.body)
		}
	}
	want := []string{
		"bin/ 5 0755 0:0",
		"bin/[ 2 0777 0:0 -> busybox",
		"bin/busybox 0 0755 0:0",
		"bin/ls 2 0777 0:0 -> busybox",
		"bin/sh 2 0777 0:0 -> busybox",
		"etc/ 5 0755 0:0",
		"etc/group 0 0644 0:0 root:x:0:|app:x:1000:|nogroup:x:65534:|",
		"etc/passwd 0 0644 0:0 root:x:0:0:root:/root:/bin/sh|app:x:1000:1000:app:/home/app:/bin/sh|nobody:x:65534:65534:nobody:/nonexistent:/bin/false|",
		"home/ 5 0755 0:0",
		"home/app/ 5 0755 1000:1000",
		"root/ 5 0700 0:0",
		"tmp/ 5 1777 0:0",
	}
	if !slices.Equal(got, want) {
		t.Errorf("layer:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestImage_Config(t *testing.T) {
	img, err := imageFrom(context.Background(), newFakeDebs().fetcher(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	wantEnv := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	if cf.OS != "linux" || cf.Architecture != "amd64" || !slices.Equal(cf.Config.Cmd, []string{"sh"}) ||
		!slices.Equal(cf.Config.Env, wantEnv) || cf.Config.Labels["org.opencontainers.image.version"] != "1:1.0-1" {
		t.Errorf("config = %s/%s cmd %q env %q labels %v", cf.OS, cf.Architecture, cf.Config.Cmd, cf.Config.Env, cf.Config.Labels)
	}
	mt, err := img.MediaType()
	if err != nil || !mt.IsImage() || !strings.Contains(string(mt), "oci") {
		t.Errorf("media type %q, %v; want an OCI manifest", mt, err)
	}
}

func TestImage_SameBusybox_SameDigest(t *testing.T) {
	a, err := imageFrom(context.Background(), newFakeDebs().fetcher(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := imageFrom(context.Background(), newFakeDebs().fetcher(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	other := newFakeDebs()
	other.script = strings.Replace(fakeScript, "ls", "cat", 1)
	c, err := imageFrom(context.Background(), other.fetcher(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, a) != digestOf(t, b) || digestOf(t, a) == digestOf(t, c) {
		t.Errorf("digests %s, %s, %s: want the first two equal and the third different", digestOf(t, a), digestOf(t, b), digestOf(t, c))
	}
}

func TestImage_SecondCall_NeitherAptNorPath(t *testing.T) {
	cache, debs := t.TempDir(), newFakeDebs()
	first, err := imageFrom(context.Background(), debs.fetcher(), cache)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", "")
	second, err := imageFrom(context.Background(), noApt(t), cache)
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, first) != digestOf(t, second) || debs.downloads.Load() != 1 {
		t.Errorf("digests %s then %s after %d downloads; want the same after one", digestOf(t, first), digestOf(t, second), debs.downloads.Load())
	}
}

func TestImage_CacheLayout(t *testing.T) {
	cache := t.TempDir()
	if _, err := imageFrom(context.Background(), newFakeDebs().fetcher(), cache); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(cache, "debs", Package)
	pin, err := os.ReadFile(filepath.Join(root, "pinned"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("deb bytes"))
	if got, want := strings.TrimSpace(string(pin)), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("pinned %s, want the .deb's sha256 %s", got, want)
	}
	entry := filepath.Join(root, "sha256-"+strings.TrimSpace(string(pin)))
	if _, err := os.Stat(filepath.Join(entry, "root", binaryPath)); err != nil {
		t.Errorf("cache entry for pin %q: %v", pin, err)
	}
	if b, _ := os.ReadFile(filepath.Join(entry, "package")); string(b) != Package+" 1:1.0-1\n" {
		t.Errorf("package file %q", b)
	}
}

func TestImage_DownloadFails_NothingPinned(t *testing.T) {
	cache, debs := t.TempDir(), newFakeDebs()
	debs.err = fmt.Errorf("%w busybox-static: no network", images.ErrDebDownload)
	_, err := imageFrom(context.Background(), debs.fetcher(), cache)
	if !errors.Is(err, images.ErrDebDownload) {
		t.Fatalf("err = %v, want ErrDebDownload", err)
	}
	left, _ := filepath.Glob(filepath.Join(cache, "debs", Package, "*"))
	if len(left) != 0 {
		t.Errorf("cache after a failed download holds %v", left)
	}
	debs.err = nil
	if _, err := imageFrom(context.Background(), debs.fetcher(), cache); err != nil || debs.downloads.Load() != 2 {
		t.Errorf("retry: %v after %d downloads, want success after 2", err, debs.downloads.Load())
	}
}

func TestImage_BinaryFails_Error(t *testing.T) {
	debs := newFakeDebs()
	debs.script = "#!/bin/sh\necho broken >&2\nexit 3\n"
	_, err := imageFrom(context.Background(), debs.fetcher(), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "--list") || !strings.Contains(err.Error(), "broken") {
		t.Errorf("err = %v, want the failed --list with its stderr", err)
	}
}

func TestParseApplets(t *testing.T) {
	for _, tc := range []struct {
		list string
		want []string
		ok   bool
	}{
		{"sh\nls\n[\n[[\nbusybox\nls\n", []string{"[", "[[", "ls", "sh"}, true},
		{"ssl_client\nrun-parts\n", []string{"run-parts", "ssl_client"}, true},
		{"busybox\n", nil, false},
		{"", nil, false},
		{"sh\n../etc/passwd\n", nil, false},
		{"usr/bin/env\n", nil, false},
		{"..\n", nil, false},
	} {
		got, err := parseApplets(tc.list)
		if !slices.Equal(got, tc.want) || (err == nil) != tc.ok {
			t.Errorf("parseApplets(%q) = %q, %v; want %q, ok %v", tc.list, got, err, tc.want, tc.ok)
		}
	}
}

// TestImage_Debian builds the image from the real package: it needs apt
// and Debian's mirrors the first time, and neither the second.
func TestImage_Debian(t *testing.T) {
	cache := t.TempDir()
	first, err := Image(context.Background(), cache)
	if errors.Is(err, images.ErrDebDownload) {
		t.Skipf("SKIP: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", "")
	second, err := Image(context.Background(), cache)
	if err != nil {
		t.Fatalf("second call with PATH empty: %v", err)
	}
	if digestOf(t, first) != digestOf(t, second) {
		t.Errorf("digest %s then %s", digestOf(t, first), digestOf(t, second))
	}
	names := map[string]tarEntry{}
	for _, e := range layerEntries(t, second) {
		names[e.Name] = e
	}
	bin := names[binaryPath]
	if !bytes.HasPrefix([]byte(bin.body), []byte("\x7fELF")) || bin.Mode != 0o755 {
		t.Errorf("%s: mode %04o, starts %q; want an executable ELF file", binaryPath, bin.Mode, bin.body[:min(4, len(bin.body))])
	}
	for _, a := range []string{"sh", "ls", "cat", "env", "mount", "["} {
		if e, ok := names["bin/"+a]; !ok || e.Typeflag != tar.TypeSymlink || e.Linkname != "busybox" {
			t.Errorf("bin/%s: %+v, want a symlink to busybox", a, e.Header)
		}
	}
	size, _ := layerSize(second)
	t.Logf("busybox image %s: %d entries, layer %d bytes compressed", digestOf(t, second), len(names), size)
}

func layerSize(img v1.Image) (int64, error) {
	layers, err := img.Layers()
	if err != nil {
		return 0, err
	}
	return layers[0].Size()
}

func TestImage_ConcurrentCallers_OneEntry(t *testing.T) {
	cache, debs := t.TempDir(), newFakeDebs()
	const callers = 4
	digests := make([]v1.Hash, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			img, err := imageFrom(context.Background(), debs.fetcher(), cache)
			if err == nil {
				digests[i], err = img.Digest()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	entries, _ := filepath.Glob(filepath.Join(cache, "debs", Package, "*"))
	if len(slices.Compact(digests)) != 1 || len(entries) != 2 {
		t.Errorf("digests %v, cache %v; want one digest, the pin and one entry", digests, entries)
	}
}
