package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/Microsoft/hcsshim/ext4/tar2ext4"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

func imageOf(t testing.TB, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// noise is incompressible data, so sizes mean something.
func noise(seed uint64, n int) string {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return string(b)
}

// sampleLayers covers every kind of entry and every flattening rule that
// changes what lands on the disk.
func sampleLayers(t *testing.T) [][]byte {
	su := owned(reg("usr/bin/su", noise(1, 5000)), 0, 0, 0o4755)
	su.PAXRecords = map[string]string{
		"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00",
		"SCHILY.xattr.user.note":           "hi",
	}
	null := ent{Header: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3, ModTime: mtime}}
	loop := ent{Header: tar.Header{Typeflag: tar.TypeBlock, Name: "dev/loop0", Mode: 0o660, Gid: 6, Devmajor: 7, ModTime: mtime}}
	fifo := ent{Header: tar.Header{Typeflag: tar.TypeFifo, Name: "run/fifo", Mode: 0o600, Uid: 5, ModTime: mtime}}
	return [][]byte{
		tarOf(t, owned(dir("./"), 0, 0, 0o755), dir("etc/"), reg("etc/passwd", "root:x:0:0::/root:/bin/sh\n"), reg("etc/old", "stale"),
			dir("usr/bin/"), su, hard("usr/bin/su2", "usr/bin/su"), sym("bin", "usr/bin"), sym("cfg", "/etc"),
			sym("long", strings.Repeat("a/", 60)+"end"), owned(dir("home/u/"), 1000, 1001, 0o750),
			owned(reg("home/u/.profile", "export A=1\n"), 1000, 1001, 0o600), reg("big", noise(2, 300_000)),
			dir("d/"), reg("d/lower", "l"), reg("empty", ""), null, loop, fifo),
		tarOf(t, reg("etc/.wh.old", ""), reg("d/.wh..wh..opq", ""), reg("d/upper", "u"),
			reg("etc/passwd", "root:x:0:0::/root:/bin/bash\n"), reg("cfg/added", "through the link"), reg("bin/tool", "#!/bin/sh\n")),
	}
}

func TestBuild_DiskMatchesTree(t *testing.T) {
	needE2fsprogs(t)
	tars := sampleLayers(t)
	img := imageOf(t, layersOf(t, tars...)...)
	path, st, err := Build(context.Background(), img, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	e2fsckClean(t, path)
	var flat bytes.Buffer
	if _, err := Flatten(context.Background(), layersOf(t, tars...), &flat, Options{}); err != nil {
		t.Fatal(err)
	}
	checkDisk(t, path, flat.Bytes())

	// What the rules promise, read from the disk itself.
	disk := listDisk(t, path)
	for _, gone := range []string{"etc/old", "d/lower", "cfg/added", "bin/tool"} {
		if _, ok := disk[gone]; ok {
			t.Errorf("%s is on the disk", gone)
		}
	}
	for name, want := range map[string]string{"etc/added": "through the link", "usr/bin/tool": "#!/bin/sh\n", "d/upper": "u", "etc/passwd": "root:x:0:0::/root:/bin/bash\n"} {
		if got := catDisk(t, path, name, disk[name].size); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if disk["usr/bin/su"].ino != disk["usr/bin/su2"].ino {
		t.Error("usr/bin/su and su2 are not one inode")
	}
	for name, want := range map[string]diskEntry{
		"usr/bin/su": {mode: 0o104755}, "home/u": {mode: 0o040750, uid: 1000, gid: 1001},
		"dev/null": {mode: 0o020666}, "dev/loop0": {mode: 0o060660, gid: 6}, "run/fifo": {mode: 0o010600, uid: 5},
	} {
		if d := disk[name]; d.mode != want.mode || d.uid != want.uid || d.gid != want.gid {
			t.Errorf("%s: mode %o uid %d gid %d, want %o %d %d", name, d.mode, d.uid, d.gid, want.mode, want.uid, want.gid)
		}
	}
	if x := xattrDisk(t, path, "usr/bin/su", "security.capability"); x != "\x01\x00\x00\x02\x00\x20\x00\x00" {
		t.Errorf("usr/bin/su security.capability = %q", x)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o444 || st.DiskBytes != fi.Size() {
		t.Errorf("disk %v (%v), Stats.DiskBytes %d; want a read-only file of that size", fi, err, st.DiskBytes)
	}
}

func TestBuild_SecondCall_ReusesDisk(t *testing.T) {
	img := imageOf(t, layersOf(t, tarOf(t, reg("f", "x")))...)
	cache := t.TempDir()
	p1, st1, err := Build(context.Background(), img, cache, Options{})
	if err != nil || st1.Cached {
		t.Fatalf("first Build: %v, cached %v", err, st1.Cached)
	}
	fi1, _ := os.Stat(p1)
	p2, st2, err := Build(context.Background(), img, cache, Options{})
	fi2, _ := os.Stat(p2)
	if err != nil || !st2.Cached || p2 != p1 || !os.SameFile(fi1, fi2) {
		t.Errorf("second Build = %s cached %v err %v; want the same file %s, cached", p2, st2.Cached, err, p1)
	}
	if !strings.HasPrefix(p1, filepath.Join(cache, "rootfs", diskFormat)+"/") {
		t.Errorf("disk at %s, want under %s/rootfs/%s", p1, cache, diskFormat)
	}
}

func TestBuild_Concurrent_BuildsOnce(t *testing.T) {
	needE2fsprogs(t)
	img := imageOf(t, layersOf(t, tarOf(t, reg("big", noise(3, 1<<20))))...)
	cache := t.TempDir()
	const n = 6
	var wg sync.WaitGroup
	paths, built := make([]string, n), make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			var st Stats
			paths[i], st, errs[i] = Build(context.Background(), img, cache, Options{})
			built[i] = !st.Cached
		})
	}
	wg.Wait()
	builds := 0
	for i := range n {
		if errs[i] != nil || paths[i] != paths[0] {
			t.Errorf("Build %d = %s, %v; want %s", i, paths[i], errs[i], paths[0])
		}
		if built[i] {
			builds++
		}
	}
	if builds != 1 {
		t.Errorf("%d builds, want 1", builds)
	}
	e2fsckClean(t, paths[0])
	if tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(paths[0]), ".tmp-*")); len(tmps) > 0 {
		t.Errorf("temporary files left: %v", tmps)
	}
}

func TestBuild_Failure_LeavesNothing(t *testing.T) {
	img := imageOf(t, layersOf(t, tarOf(t, reg("ok", "x"), reg("../../escape", "x")))...)
	cache := t.TempDir()
	if _, _, err := Build(context.Background(), img, cache, Options{}); !errors.Is(err, ErrPathEscape) {
		t.Fatalf("err = %v, want ErrPathEscape", err)
	}
	left, _ := filepath.Glob(filepath.Join(cache, "rootfs", diskFormat, "*.ext4*"))
	tmps, _ := filepath.Glob(filepath.Join(cache, "rootfs", diskFormat, ".tmp-*"))
	for _, f := range append(left, tmps...) {
		if !strings.HasSuffix(f, ".lock") {
			t.Errorf("failed build left %s", f)
		}
	}
}

func TestBuild_StaleTemp_Removed(t *testing.T) {
	img := imageOf(t, layersOf(t, tarOf(t, reg("f", "x")))...)
	cache := t.TempDir()
	path, _, err := Build(context.Background(), img, cache, Options{})
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(path)
	stale := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-killed")
	if err := os.WriteFile(stale, []byte("half a disk"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Build(context.Background(), img, cache, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale %s survived a rebuild: %v", stale, err)
	}
}

func TestBuild_KeyIsLayerStack(t *testing.T) {
	layer := layerOf(t, tarOf(t, reg("f", "x")))
	base := imageOf(t, layer)
	withCmd, err := mutate.Config(base, v1.Config{Cmd: []string{"/bin/other"}})
	if err != nil {
		t.Fatal(err)
	}
	other := imageOf(t, layer, layerOf(t, tarOf(t, reg("g", "y"))))
	cache := t.TempDir()
	p1, _, err1 := Build(context.Background(), base, cache, Options{})
	p2, st2, err2 := Build(context.Background(), withCmd, cache, Options{})
	p3, _, err3 := Build(context.Background(), other, cache, Options{})
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatal(err)
	}
	if p2 != p1 || !st2.Cached {
		t.Errorf("same layers, other CMD: %s (cached %v), want %s reused", p2, st2.Cached, p1)
	}
	if p3 == p1 {
		t.Errorf("an extra layer reused %s", p1)
	}
}

func TestBuild_NoLayers(t *testing.T) {
	needE2fsprogs(t)
	path, _, err := Build(context.Background(), empty.Image, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	e2fsckClean(t, path)
}

func TestChainID_MatchesSpec(t *testing.T) {
	// From the OCI image spec's worked example shape: ChainID(A|B) =
	// sha256(ChainID(A) + " " + DiffID(B)), and ChainID(A) = DiffID(A).
	a := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}
	b := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("b", 64)}
	one, _ := chainID([]v1.Hash{a})
	two, _ := chainID([]v1.Hash{a, b})
	want, _, _ := v1.SHA256(strings.NewReader(a.String() + " " + b.String()))
	if one != a || two != want {
		t.Errorf("chainID(a) = %s, chainID(a, b) = %s; want %s, %s", one, two, a, want)
	}
	if _, err := chainID([]v1.Hash{{Algorithm: "sha256", Hex: "../../x"}}); err == nil {
		t.Error("a diff_id that is not hex was accepted as a file name")
	}
}

// zeros streams a layer holding one file of n zero bytes, without holding
// it in memory.
func zeros(n int64) source {
	return source{open: func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() {
			tw := tar.NewWriter(pw)
			err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "zeros", Size: n, Mode: 0o644})
			if err == nil {
				_, err = io.CopyN(tw, zeroReader{}, n)
			}
			if err == nil {
				err = tw.Close()
			}
			pw.CloseWithError(err)
		}()
		return pr, nil
	}}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestBuild_ManyGroups_E2fsckClean(t *testing.T) {
	needE2fsprogs(t)
	if testing.Short() {
		t.Skip("writes a 140 MiB disk")
	}
	path := filepath.Join(t.TempDir(), "many.ext4")
	if _, err := writeDisk(context.Background(), []source{zeros(140 << 20)}, path, Options{}); err != nil {
		t.Fatal(err)
	}
	sb, err := tar2ext4.ReadExt4SuperBlock(path)
	if err != nil {
		t.Fatal(err)
	}
	if groups := sb.InodesCount / sb.InodesPerGroup; groups < 2 {
		t.Fatalf("%d block group, want several to check every group's inode bitmap", groups)
	}
	e2fsckClean(t, path)
}

func TestWriteDisk_Failures_ReportCauseAndLeaveNothing(t *testing.T) {
	changing := func() source {
		reads := [][]byte{tarOf(t, reg("f", "first")), tarOf(t, reg("g", "other"))}
		return source{open: func() (io.ReadCloser, error) {
			b := reads[0]
			reads = reads[1:]
			return io.NopCloser(bytes.NewReader(b)), nil
		}}
	}
	for name, tc := range map[string]struct {
		src  source
		want string
	}{
		// The tar writer fails; tar2ext4 only sees its error.
		"second read differs": {changing(), "layer 0: entry 0 changed between reads"},
		// tar2ext4 fails; the writer only sees a closed pipe.
		"lost+found a file": {bytesSources(tarOf(t, reg("lost+found", "x")))[0], "write ext4: lost+found"},
	} {
		dir := t.TempDir()
		_, err := writeDisk(context.Background(), []source{tc.src}, filepath.Join(dir, "d.ext4"), Options{})
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
		if left, _ := os.ReadDir(dir); len(left) > 0 {
			t.Errorf("%s: left %v behind", name, left)
		}
	}
}

// countingLayer counts reads of a layer's bytes, and asking it for its
// diff_id, which reads a compressed layer whole.
type countingLayer struct {
	v1.Layer
	reads *atomic.Int32
}

func (l countingLayer) DiffID() (v1.Hash, error) {
	l.reads.Add(1)
	return l.Layer.DiffID()
}

func (l countingLayer) Compressed() (io.ReadCloser, error) {
	l.reads.Add(1)
	return l.Layer.Compressed()
}

func (l countingLayer) Uncompressed() (io.ReadCloser, error) {
	l.reads.Add(1)
	return l.Layer.Uncompressed()
}

// imageWith is an image whose layers or config a test replaces.
type imageWith struct {
	v1.Image
	layers []v1.Layer
	config *v1.ConfigFile
}

func (i imageWith) Layers() ([]v1.Layer, error) { return i.layers, nil }
func (i imageWith) ConfigFile() (*v1.ConfigFile, error) {
	if i.config != nil {
		return i.config, nil
	}
	return i.Image.ConfigFile()
}

// A cached disk is found from the config's diff_ids without reading a
// layer: a compressed layer's DiffID decompresses it whole, which made
// every run of a big image slow.
func TestBuild_Cached_ReadsNoLayer(t *testing.T) {
	img := imageOf(t, layersOf(t, tarOf(t, reg("f", noise(1, 1<<20))))...)
	cache := t.TempDir()
	if _, _, err := Build(context.Background(), img, cache, Options{}); err != nil {
		t.Fatal(err)
	}
	var reads atomic.Int32
	layers, _ := img.Layers()
	counted := imageWith{Image: img}
	for _, l := range layers {
		counted.layers = append(counted.layers, countingLayer{l, &reads})
	}
	if _, st, err := Build(context.Background(), counted, cache, Options{}); err != nil || !st.Cached {
		t.Fatalf("second Build: cached %v, %v", st.Cached, err)
	}
	if n := reads.Load(); n != 0 {
		t.Errorf("a cached Build read layers %d times, want 0", n)
	}
}

// A config whose diff_ids do not match the layers fails the build; it
// does not file a disk under the lie.
func TestBuild_ConfigDiffIDsLie_Fails(t *testing.T) {
	img := imageOf(t, layersOf(t, tarOf(t, reg("f", "x")))...)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	lie := cf.DeepCopy()
	lie.RootFS.DiffIDs = []v1.Hash{{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}}
	layers, _ := img.Layers()
	cache := t.TempDir()
	if _, _, err := Build(context.Background(), imageWith{Image: img, layers: layers, config: lie}, cache, Options{}); err == nil {
		t.Fatal("Build accepted layers that do not match the config's diff_ids")
	}
	if disks, _ := filepath.Glob(filepath.Join(cache, "rootfs", diskFormat, "*.ext4")); len(disks) != 0 {
		t.Errorf("disks left: %v", disks)
	}
}
