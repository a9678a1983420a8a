package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/vmm-dev/vmm/images/oci"
	"github.com/vmm-dev/vmm/images/rootfs"
	"github.com/vmm-dev/vmm/vmm"
	"github.com/vmm-dev/vmm/vmtest"
)

// The image CLI tests run `vmm pull`, `vmm images` and `vmm rmi` against
// go-containerregistry's registry served on loopback (plain HTTP: vmm, like
// docker, treats 127.0.0.1 as insecure), each with its own cache directory.
// They need no KVM and no network.

// imgCLI runs vmm with a private cache, home and credentials.
type imgCLI struct {
	t     *testing.T
	bin   string
	root  string // everything the test writes lives under it
	cache string // XDG_CACHE_HOME; the store is cache/vmm/oci
	work  string // vmm's working directory
	env   []string
}

func newImgCLI(t *testing.T) *imgCLI {
	t.Helper()
	root := t.TempDir()
	c := &imgCLI{t: t, bin: vmtest.Binary(t), root: root,
		cache: filepath.Join(root, "cache"), work: filepath.Join(root, "a", "b", "work")}
	home := filepath.Join(root, "home")
	for _, d := range []string{c.cache, c.work, home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "HOME" || k == "DOCKER_CONFIG" || k == "REGISTRY_AUTH_FILE" || strings.HasPrefix(k, "XDG_") {
			continue
		}
		c.env = append(c.env, kv)
	}
	// No credentials of the developer's reach the test registry.
	c.env = append(c.env, "HOME="+home, "XDG_CACHE_HOME="+c.cache,
		"XDG_RUNTIME_DIR="+home, "DOCKER_CONFIG="+filepath.Join(home, ".docker"))
	return c
}

// run runs vmm with args and returns its output and exit status.
func (c *imgCLI) run(args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Dir, cmd.Env = c.work, c.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		c.t.Fatalf("vmm %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), code
}

// mustRun runs vmm and fails the test unless it exits 0.
func (c *imgCLI) mustRun(args ...string) string {
	c.t.Helper()
	out, errs, code := c.run(args...)
	if code != 0 {
		c.t.Fatalf("vmm %s: exit %d\nstderr: %s", strings.Join(args, " "), code, errs)
	}
	return out
}

// pull runs `vmm pull ref` and returns the digest it printed.
func (c *imgCLI) pull(ref string) string {
	c.t.Helper()
	f := strings.Fields(c.mustRun("pull", ref))
	if len(f) != 2 || f[0] != ref || !strings.HasPrefix(f[1], "sha256:") {
		c.t.Fatalf("vmm pull %s printed %q, want the reference and its digest", ref, f)
	}
	return f[1]
}

// images returns the IMAGE and DIGEST columns of `vmm images`.
func (c *imgCLI) images() []string {
	c.t.Helper()
	lines := strings.Split(strings.TrimSpace(c.mustRun("images")), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "IMAGE") {
		c.t.Fatalf("vmm images printed %q, want a header first", lines)
	}
	var out []string
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		out = append(out, f[0]+" "+f[1])
	}
	return out
}

func (c *imgCLI) storeDir() string { return filepath.Join(c.cache, "vmm", "oci") }

// storeState lists every path in the store with the sha256 of its content,
// to show that a failed pull changed nothing.
func (c *imgCLI) storeState() []string {
	c.t.Helper()
	var out []string
	err := filepath.WalkDir(c.storeDir(), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(c.storeDir(), p)
		if d.IsDir() {
			out = append(out, rel+"/")
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out = append(out, rel+" "+hex.EncodeToString(sum[:8]))
		return nil
	})
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

// failPull runs `vmm pull ref`, which must fail with a one-line message
// holding every one of want, and must leave the store as it was.
func (c *imgCLI) failPull(ref string, want ...string) string {
	c.t.Helper()
	before, listed := c.storeState(), c.images()
	out, errs, code := c.run("pull", ref)
	if code != vmm.StatusSetupError || out != "" {
		c.t.Errorf("vmm pull %s: exit %d, stdout %q; want exit %d and no output", ref, code, out, vmm.StatusSetupError)
	}
	msg := strings.TrimSuffix(errs, "\n")
	if strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "vmm pull: ") {
		c.t.Errorf("vmm pull %s: stderr %q, want one line starting \"vmm pull: \"", ref, errs)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			c.t.Errorf("vmm pull %s: stderr %q does not say %q", ref, msg, w)
		}
	}
	if after := c.storeState(); !slices.Equal(before, after) {
		c.t.Errorf("a failed pull changed the store:\nbefore %q\nafter  %q", before, after)
	}
	if got := c.images(); !slices.Equal(got, listed) {
		c.t.Errorf("vmm images after a failed pull: %q, want %q", got, listed)
	}
	c.t.Logf("vmm pull %s: exit %d: %s", ref, code, msg)
	return msg
}

// imgRegistry is go-containerregistry's in-memory registry on 127.0.0.1,
// counting what it serves and able to corrupt one blob.
type imgRegistry struct {
	srv  *httptest.Server
	host string

	mu        sync.Mutex
	gets      map[string]int // GETs by URL path
	blobBytes int64          // body bytes of blob GETs
	corrupt   string         // a blob digest whose body is served with a byte flipped
}

func newImgRegistry(t *testing.T) *imgRegistry {
	t.Helper()
	r := &imgRegistry{gets: map[string]int{}}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet {
			reg.ServeHTTP(w, req)
			return
		}
		r.mu.Lock()
		r.gets[req.URL.Path]++
		corrupt := r.corrupt != "" && strings.HasSuffix(req.URL.Path, "/blobs/"+r.corrupt)
		r.mu.Unlock()
		if strings.Contains(req.URL.Path, "/blobs/") {
			w = &imgBlobWriter{ResponseWriter: w, r: r, flip: corrupt}
		}
		reg.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	r.host = strings.TrimPrefix(r.srv.URL, "http://")
	return r
}

// push uploads img as repoTag ("test/img:v1"), forgets the push's
// requests, and returns the reference a user would type.
func (r *imgRegistry) push(t *testing.T, repoTag string, img v1.Image) string {
	t.Helper()
	ref := r.host + "/" + repoTag
	n, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(n, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gets, r.blobBytes = map[string]int{}, 0
	return ref
}

// counts returns how many blob and manifest GETs were served, and the
// blob bytes sent.
func (r *imgRegistry) counts() (blobs, manifests int, bytes int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for p, n := range r.gets {
		switch {
		case strings.Contains(p, "/blobs/"):
			blobs += n
		case strings.Contains(p, "/manifests/"):
			manifests += n
		}
	}
	return blobs, manifests, r.blobBytes
}

// setCorrupt makes the registry serve blob digest d ("sha256:...") with a
// byte flipped; "" serves every blob intact again.
func (r *imgRegistry) setCorrupt(d string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.corrupt = d
}

// imgBlobWriter counts a blob's body bytes and, when flip is set, inverts
// its first byte, keeping its length.
type imgBlobWriter struct {
	http.ResponseWriter
	r    *imgRegistry
	flip bool
}

func (w *imgBlobWriter) Write(p []byte) (int, error) {
	w.r.mu.Lock()
	w.r.blobBytes += int64(len(p))
	w.r.mu.Unlock()
	if w.flip && len(p) > 0 {
		w.flip = false
		p = append([]byte{p[0] ^ 0xff}, p[1:]...)
	}
	return w.ResponseWriter.Write(p)
}

func imgRandom(t *testing.T, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(4096, layers)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// imgCompressedSize is the bytes of img's config and layers as a registry
// serves them.
func imgCompressedSize(t *testing.T, img v1.Image) int64 {
	t.Helper()
	mf, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	n := mf.Config.Size
	for _, l := range mf.Layers {
		n += l.Size
	}
	return n
}

func TestImagesCLI_PullTwice_TransfersOnce(t *testing.T) {
	cli, reg := newImgCLI(t), newImgRegistry(t)
	img := imgRandom(t, 2)
	ref := reg.push(t, "test/img:v1", img)
	want, _ := img.Digest()

	if got := cli.pull(ref); got != want.String() {
		t.Errorf("first pull: digest %s, want %s", got, want)
	}
	blobs, manifests, n := reg.counts()
	if blobs != 3 || n != imgCompressedSize(t, img) {
		t.Errorf("first pull: %d blob GETs, %d bytes; want 3 (config and 2 layers), %d bytes", blobs, n, imgCompressedSize(t, img))
	}
	t.Logf("first pull: %d blob GETs (%d bytes), %d manifest GETs", blobs, n, manifests)

	if got := cli.pull(ref); got != want.String() {
		t.Errorf("second pull: digest %s, want %s", got, want)
	}
	blobs2, manifests2, n2 := reg.counts()
	if blobs2 != blobs || n2 != n {
		t.Errorf("second pull fetched %d more blobs (%d bytes); want none", blobs2-blobs, n2-n)
	}
	t.Logf("second pull: %d blob GETs, %d manifest GETs (the tag is resolved again)", blobs2-blobs, manifests2-manifests)

	short := want.String()[:len("sha256:")+12]
	if got := cli.images(); !slices.Equal(got, []string{ref + " " + short}) {
		t.Errorf("vmm images: %q, want %s %s", got, ref, short)
	}
	if out := cli.mustRun("rmi", ref); strings.TrimSpace(out) != "removed "+ref {
		t.Errorf("vmm rmi printed %q", out)
	}
	left, _ := filepath.Glob(filepath.Join(cli.storeDir(), "blobs", "sha256", "*"))
	if got := cli.images(); len(got) != 0 || len(left) != 0 {
		t.Errorf("after rmi: images %q, blobs %q; want none", got, left)
	}
}

// imgSeed pulls a good image into cli's store and returns its reference.
func imgSeed(t *testing.T, cli *imgCLI, reg *imgRegistry) string {
	t.Helper()
	ref := reg.push(t, "test/good:v1", imgRandom(t, 2))
	cli.pull(ref)
	return ref
}

// imgStillServes checks that ref, stored before, is pulled again without
// moving a blob.
func imgStillServes(t *testing.T, cli *imgCLI, reg *imgRegistry, ref string) {
	t.Helper()
	before, _, _ := reg.counts()
	cli.pull(ref)
	if after, _, _ := reg.counts(); after != before {
		t.Errorf("pull of the stored %s after a failure fetched %d blobs, want 0", ref, after-before)
	}
}

func TestImagesCLI_UnknownReference_NotFound(t *testing.T) {
	cli, reg := newImgCLI(t), newImgRegistry(t)
	good := imgSeed(t, cli, reg)
	for _, ref := range []string{
		reg.host + "/test/good:nosuchtag", // a repository without that tag
		reg.host + "/test/nosuchrepo:v1",  // no such repository
		reg.host + "/test/good@sha256:" + strings.Repeat("0", 64),
	} {
		cli.failPull(ref, ref, "not found")
	}
	imgStillServes(t, cli, reg, good)
}

func TestImagesCLI_UnreachableRegistry(t *testing.T) {
	cli, reg := newImgCLI(t), newImgRegistry(t)
	good := imgSeed(t, cli, reg)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := l.Addr().String()
	l.Close() // nothing listens there now
	cli.failPull(host+"/test/img:v1", "cannot reach registry "+host, "connection refused")
	imgStillServes(t, cli, reg, good)

	// With no registry at all, the store still has the whole image, as
	// `vmm run` will want it (Get reads the store first).
	reg.srv.Close()
	store, err := oci.Open(cli.storeDir())
	if err != nil {
		t.Fatal(err)
	}
	r, err := oci.ParseRef(good)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Get(context.Background(), r, oci.Options{}); err != nil {
		t.Errorf("stored %s with the registry down: %v", good, err)
	}
}

func TestImagesCLI_CorruptLayer_Rejected(t *testing.T) {
	cli, reg := newImgCLI(t), newImgRegistry(t)
	good := imgSeed(t, cli, reg)
	img := imgRandom(t, 2)
	ref := reg.push(t, "test/bad:v1", img)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	bad, err := layers[1].Digest()
	if err != nil {
		t.Fatal(err)
	}
	reg.setCorrupt(bad.String())
	cli.failPull(ref, ref, "corrupt", bad.String())
	mf, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range append([]v1.Descriptor{mf.Config}, mf.Layers...) {
		if _, err := os.Stat(filepath.Join(cli.storeDir(), "blobs", b.Digest.Algorithm, b.Digest.Hex)); err == nil {
			t.Errorf("blob %s of the failed pull is in the store", b.Digest)
		}
	}
	imgStillServes(t, cli, reg, good)

	// Served intact, the same image pulls: nothing of the bad copy stuck.
	reg.setCorrupt("")
	want, _ := img.Digest()
	if got := cli.pull(ref); got != want.String() {
		t.Errorf("pull after the registry was fixed: %s, want %s", got, want)
	}
}

// imgTarEntry is one member of a hand-made layer.
type imgTarEntry struct {
	name, link string
	typ        byte
	body       string
}

// imgLayerImage returns a one-layer image whose tar holds es, in order.
func imgLayerImage(t *testing.T, es ...imgTarEntry) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			h.Size, h.Mode = 0, 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	blob := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(blob)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// imgDiskTree lists an ext4 image's paths and their file types (debugfs
// "ls -p" prints /inode/mode/uid/gid/name/size/ a line).
func imgDiskTree(t *testing.T, disk string) map[string]string {
	t.Helper()
	tree := map[string]string{}
	var walk func(dir string)
	walk = func(dir string) {
		out, err := exec.Command("debugfs", "-R", "ls -p "+strconv.Quote("/"+dir), disk).Output()
		if err != nil {
			t.Fatalf("debugfs ls %s: %v", dir, err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Split(line, "/")
			if len(f) != 8 || f[5] == "" || f[5] == "." || f[5] == ".." {
				continue
			}
			mode, _ := strconv.ParseUint(f[2], 8, 32)
			p := path.Join(dir, f[5])
			tree[p] = map[uint64]string{0o040000: "dir", 0o100000: "file", 0o120000: "symlink"}[mode&0o170000]
			if tree[p] == "dir" && f[5] != "lost+found" {
				walk(p)
			}
		}
	}
	walk("")
	return tree
}

// imgNamedAnywhere returns the paths under root whose last element is one of
// names.
func imgNamedAnywhere(t *testing.T, root string, names ...string) []string {
	t.Helper()
	var found []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && slices.Contains(names, d.Name()) {
			found = append(found, p)
		}
		return nil
	})
	return found
}

func imgFileDigest(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func TestImagesCLI_PathTraversalLayer_Confined(t *testing.T) {
	if _, err := exec.LookPath("debugfs"); err != nil {
		t.Skip("SKIP: debugfs not installed (e2fsprogs), cannot read the rootfs back")
	}
	cli, reg := newImgCLI(t), newImgRegistry(t)
	ent := func(n, l string, typ byte, body string) imgTarEntry { return imgTarEntry{n, l, typ, body} }
	escape := reg.push(t, "test/escape:v1", imgLayerImage(t,
		ent("ok", "", tar.TypeReg, "ok"),
		ent("../../evil", "", tar.TypeReg, "pwned")))
	hardlink := reg.push(t, "test/hardlink:v1", imgLayerImage(t,
		ent("x", "", tar.TypeReg, "x"),
		ent("h", "../x", tar.TypeLink, "")))
	reroot := reg.push(t, "test/reroot:v1", imgLayerImage(t,
		ent("/abs/evil", "", tar.TypeReg, "abs"),
		ent("link", "/etc", tar.TypeSymlink, ""),
		ent("link/passwd", "", tar.TypeReg, "pwned")))
	hostPasswd := imgFileDigest(t, "/etc/passwd")
	outside := []string{filepath.Join(filepath.Dir(cli.root), "evil"), "/evil", "/abs/evil", filepath.Join(filepath.Dir(cli.work), "evil")}
	for _, p := range outside {
		if _, err := os.Lstat(p); err == nil {
			t.Fatalf("%s exists before the test", p)
		}
	}

	// Pulling only copies verified blobs: every one is stored.
	for _, ref := range []string{escape, hardlink, reroot} {
		cli.pull(ref)
	}
	reg.srv.Close() // from here on, only the store serves

	store, err := oci.Open(cli.storeDir())
	if err != nil {
		t.Fatal(err)
	}
	build := func(ref string) (string, error) {
		r, err := oci.ParseRef(ref)
		if err != nil {
			t.Fatal(err)
		}
		img, err := store.Get(context.Background(), r, oci.Options{})
		if err != nil {
			t.Fatalf("read %s back from the store: %v", ref, err)
		}
		disk, _, err := rootfs.Build(context.Background(), img, filepath.Join(cli.cache, "vmm"), rootfs.Options{})
		return disk, err
	}
	for _, tc := range []struct {
		ref  string
		kind error
	}{{escape, rootfs.ErrPathEscape}, {hardlink, rootfs.ErrPathEscape}} {
		if _, err := build(tc.ref); !errors.Is(err, tc.kind) {
			t.Errorf("build %s: %v, want %v", tc.ref, err, tc.kind)
		} else {
			t.Logf("build %s: %v", tc.ref, err)
		}
	}
	if disks, _ := filepath.Glob(filepath.Join(cli.cache, "vmm", "rootfs", "*", "*.ext4")); len(disks) != 0 {
		t.Errorf("rejected images left disks %q", disks)
	}

	disk, err := build(reroot)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"abs": "dir", "abs/evil": "file", "link": "symlink", "etc": "dir", "etc/passwd": "file", "lost+found": "dir"}
	if got := imgDiskTree(t, disk); !maps.Equal(got, want) {
		t.Errorf("rootfs of %s holds %v, want %v", reroot, got, want)
	}
	// debugfs prints a small file's whole inline area: cut the padding.
	if out, _ := exec.Command("debugfs", "-R", "cat /etc/passwd", disk).Output(); strings.TrimRight(string(out), "\x00") != "pwned" {
		t.Errorf("/etc/passwd on the disk = %q, want the layer's link/passwd", out)
	}

	for _, p := range outside {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s was created outside the cache", p)
		}
	}
	if found := imgNamedAnywhere(t, cli.root, "evil", "passwd", "x", "h", "link", "ok"); len(found) != 0 {
		t.Errorf("layer files landed on the host: %q", found)
	}
	if imgFileDigest(t, "/etc/passwd") != hostPasswd {
		t.Error("the host's /etc/passwd changed")
	}
}
