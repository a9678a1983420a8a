package oci

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestStore_Pull_ImageReadsBack(t *testing.T) {
	reg := newTestRegistry(t)
	want := randomImage(t, 3)
	ref := reg.push(t, "test/img:v1", want)
	s := openStore(t)

	got, err := s.Pull(context.Background(), ref, anonymous())
	if err != nil {
		t.Fatal(err)
	}
	if g, w := digestOf(t, got), digestOf(t, want); g != w {
		t.Fatalf("digest %s, want %s", g, w)
	}
	gotCfg, err := got.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	wantCfg, _ := want.RawConfigFile()
	if !bytes.Equal(gotCfg, wantCfg) {
		t.Error("config differs from the pushed one")
	}
	gotLayers, err := got.Layers()
	if err != nil {
		t.Fatal(err)
	}
	wantLayers, _ := want.Layers()
	if len(gotLayers) != len(wantLayers) {
		t.Fatalf("%d layers, want %d", len(gotLayers), len(wantLayers))
	}
	for i := range gotLayers {
		g := uncompressed(t, gotLayers[i])
		w := uncompressed(t, wantLayers[i])
		if !bytes.Equal(g, w) {
			t.Errorf("layer %d differs from the pushed one", i)
		}
	}
}

func TestStore_PullTwice_TransfersBlobsOnce(t *testing.T) {
	reg := newTestRegistry(t)
	ref := reg.push(t, "test/img:v1", randomImage(t, 3))
	s := openStore(t)

	for i := range 2 {
		if _, err := s.Pull(context.Background(), ref, anonymous()); err != nil {
			t.Fatalf("pull %d: %v", i, err)
		}
	}
	if n := reg.count("GET", "/blobs/"); n != 4 { // config and 3 layers, once
		t.Errorf("%d blob GETs over two pulls, want 4: %q", n, reg.all())
	}
	if n := reg.count("GET", "/manifests/"); n != 2 { // Pull re-resolves the tag
		t.Errorf("%d manifest GETs over two pulls, want 2", n)
	}
}

func TestStore_Get_CachedTag_MakesNoRequest(t *testing.T) {
	reg := newTestRegistry(t)
	ref := reg.push(t, "test/img:v1", randomImage(t, 2))
	s := openStore(t)
	pulled, err := s.Get(context.Background(), ref, anonymous())
	if err != nil {
		t.Fatal(err)
	}
	if reg.count("GET", "/manifests/") != 1 {
		t.Fatalf("first Get did not pull: %q", reg.all())
	}
	reg.reset()

	got, err := s.Get(context.Background(), ref, anonymous())
	if err != nil {
		t.Fatal(err)
	}
	if r := reg.all(); len(r) != 0 {
		t.Errorf("Get of a cached tag made requests: %q", r)
	}
	if digestOf(t, got) != digestOf(t, pulled) {
		t.Error("cached image differs from the pulled one")
	}
}

func TestStore_Get_AfterTagMoved_KeepsLocalUntilPull(t *testing.T) {
	reg := newTestRegistry(t)
	first := randomImage(t, 1)
	ref := reg.push(t, "test/img:v1", first)
	s := openStore(t)
	if _, err := s.Pull(context.Background(), ref, anonymous()); err != nil {
		t.Fatal(err)
	}
	second := randomImage(t, 1)
	reg.push(t, "test/img:v1", second)

	got, err := s.Get(context.Background(), ref, anonymous())
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, got) != digestOf(t, first) {
		t.Error("Get re-resolved the tag; want the local image")
	}
	got, err = s.Pull(context.Background(), ref, anonymous())
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, got) != digestOf(t, second) {
		t.Error("Pull kept the old image; want the tag's new one")
	}
	oldLayers, _ := first.Layers()
	d, _ := oldLayers[0].Digest()
	if fileExists(s.blobPath(d)) {
		t.Error("the moved tag's old layer is still stored")
	}
}

func TestStore_Pull_UnknownTag_NotFoundAndStoreUnchanged(t *testing.T) {
	reg := newTestRegistry(t)
	ref := reg.push(t, "test/img:v1", randomImage(t, 1))
	s := openStore(t)
	if _, err := s.Pull(context.Background(), ref, anonymous()); err != nil {
		t.Fatal(err)
	}
	before := storeFiles(t, s)

	for _, missing := range []string{"test/img:nope", "test/other:v1"} {
		_, err := s.Pull(context.Background(), mustParseRef(t, reg.host+"/"+missing), anonymous())
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("pull %s: %v, want ErrNotFound", missing, err)
		}
		want := "image " + reg.host + "/" + missing + " not found: check the name and the tag or digest"
		if err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
	}
	if after := storeFiles(t, s); !slices.Equal(before, after) {
		t.Errorf("store changed:\nbefore %q\nafter  %q", before, after)
	}
}

func TestStore_Pull_ClosedPort_Unreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := l.Addr().String()
	l.Close()
	s := openStore(t)
	before := storeFiles(t, s)

	_, err = s.Pull(context.Background(), mustParseRef(t, host+"/test/img:v1"), anonymous())
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("got %v, want ErrUnreachable", err)
	}
	if !strings.HasPrefix(err.Error(), "cannot reach registry "+host+" for "+host+"/test/img:v1: ") || !strings.Contains(err.Error(), "refused") {
		t.Errorf("error %q does not say which registry and why", err)
	}
	if after := storeFiles(t, s); !slices.Equal(before, after) {
		t.Errorf("store changed:\nbefore %q\nafter  %q", before, after)
	}
}

func TestStore_Pull_FlippedByte_CorruptAndStoreUnchanged(t *testing.T) {
	img := randomImage(t, 3)
	layers, _ := img.Layers()
	layer, _ := layers[1].Digest()
	cfg, _ := img.ConfigName()
	for _, tc := range []struct {
		name   string
		digest v1.Hash
	}{
		{"layer", layer},
		{"config", cfg},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := newTestRegistry(t)
			s := openStore(t)
			// Something already stored, so "unchanged" means more than empty.
			if _, err := s.Pull(context.Background(), reg.push(t, "test/base:v1", randomImage(t, 1)), anonymous()); err != nil {
				t.Fatal(err)
			}
			ref := reg.push(t, "test/img:v1", img)
			before := storeFiles(t, s)

			reg.setFlip("/blobs/" + tc.digest.String())
			_, err := s.Pull(context.Background(), ref, anonymous())
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("got %v, want ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), tc.digest.String()) {
				t.Errorf("error %q does not name the blob", err)
			}
			if after := storeFiles(t, s); !slices.Equal(before, after) {
				t.Errorf("store changed:\nbefore %q\nafter  %q", before, after)
			}
			if _, err := s.List(); err != nil {
				t.Fatal(err)
			}
			reg.setFlip("")
			if _, err := s.Pull(context.Background(), ref, anonymous()); err != nil {
				t.Errorf("pull after the registry recovered: %v", err)
			}
		})
	}
}

func TestStore_Pull_ByDigest_FlippedManifest_Corrupt(t *testing.T) {
	reg := newTestRegistry(t)
	img := randomImage(t, 1)
	reg.push(t, "test/img:v1", img)
	d := digestOf(t, img)
	s := openStore(t)

	reg.setFlip("/manifests/" + d.String())
	_, err := s.Pull(context.Background(), mustParseRef(t, reg.host+"/test/img@"+d.String()), anonymous())
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v, want ErrCorrupt", err)
	}
	reg.setFlip("")
	got, err := s.Pull(context.Background(), mustParseRef(t, reg.host+"/test/img@"+d.String()), anonymous())
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, got) != d {
		t.Errorf("pulled %s, want %s", digestOf(t, got), d)
	}
}

func TestStore_Pull_Canceled_StoreUnchanged(t *testing.T) {
	reg := newTestRegistry(t)
	ref := reg.push(t, "test/img:v1", randomImage(t, 3))
	s := openStore(t)
	before := storeFiles(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	blobs := 0
	reg.setHook(func(_ http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/blobs/") {
			if blobs++; blobs == 3 {
				cancel() // an interrupt halfway through the layers
			}
		}
		return true
	})

	_, err := s.Pull(ctx, ref, anonymous())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if after := storeFiles(t, s); !slices.Equal(before, after) {
		t.Errorf("store changed:\nbefore %q\nafter  %q", before, after)
	}
}

func TestStore_Pull_Index_PicksPlatform(t *testing.T) {
	reg := newTestRegistry(t)
	amd, arm := randomImage(t, 1), randomImage(t, 1)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
	)
	ref := reg.pushIndex(t, "test/multi:v1", idx)
	s := openStore(t)

	got, err := s.Pull(context.Background(), ref, anonymous())
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, got) != digestOf(t, amd) {
		t.Error("default platform did not pick linux/amd64")
	}
	opts := anonymous()
	opts.Platform = &v1.Platform{OS: "linux", Architecture: "arm64"}
	got, err = s.Pull(context.Background(), ref, opts)
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, got) != digestOf(t, arm) {
		t.Error("Platform linux/arm64 did not pick the arm64 image")
	}
}

func TestStore_Pull_AuthRequired(t *testing.T) {
	reg := newTestRegistry(t)
	ref := reg.push(t, "test/img:v1", randomImage(t, 1))
	reg.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if u, p, ok := r.BasicAuth(); ok && u == "vmm" && p == "secret" {
			return true
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"log in"}]}`, http.StatusUnauthorized)
		return false
	})
	s := openStore(t)
	before := storeFiles(t, s)

	_, err := s.Pull(context.Background(), ref, anonymous())
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("got %v, want ErrAuth", err)
	}
	if !strings.Contains(err.Error(), "docker login "+reg.host) {
		t.Errorf("error %q does not say how to log in", err)
	}
	if after := storeFiles(t, s); !slices.Equal(before, after) {
		t.Errorf("store changed:\nbefore %q\nafter  %q", before, after)
	}

	// Credentials come from the standard docker config file.
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("DOCKER_CONFIG", home+"/.docker")
	writeDockerConfig(t, home+"/.docker", reg.host, "vmm", "secret")
	if _, err := s.Pull(context.Background(), ref, Options{}); err != nil {
		t.Fatalf("pull with credentials from DOCKER_CONFIG: %v", err)
	}
}

func TestStore_RemoveCollectsUnneededBlobs(t *testing.T) {
	reg := newTestRegistry(t)
	base, err := random.Layer(2048, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	mk := func() v1.Image {
		own, err := random.Layer(2048, types.DockerLayer)
		if err != nil {
			t.Fatal(err)
		}
		img, err := mutate.AppendLayers(empty.Image, base, own)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	a, b := mk(), mk()
	refA, refB := reg.push(t, "test/a:v1", a), reg.push(t, "test/b:v1", b)
	s := openStore(t)
	for _, r := range []Ref{refA, refB} {
		if _, err := s.Pull(context.Background(), r, anonymous()); err != nil {
			t.Fatal(err)
		}
	}
	if l, _ := s.List(); len(l) != 2 {
		t.Fatalf("List has %d entries, want 2", len(l))
	}

	if err := s.Remove(refA); err != nil {
		t.Fatal(err)
	}
	for _, h := range blobDigests(t, a) {
		shared := slices.Contains(blobDigests(t, b), h)
		if fileExists(s.blobPath(h)) != shared {
			t.Errorf("blob %s: stored %v, want %v (shared with b: %v)", h, !shared, shared, shared)
		}
	}
	if _, err := s.Image(digestOf(t, b)); err != nil {
		t.Errorf("b after removing a: %v", err)
	}
	if err := s.Remove(refA); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Remove: %v, want ErrNotFound", err)
	}
	if err := s.Remove(refB); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.List(); len(l) != 0 {
		t.Errorf("List after removing both: %v", l)
	}
	for _, h := range blobDigests(t, b) {
		if fileExists(s.blobPath(h)) {
			t.Errorf("blob %s survived removing every image", h)
		}
	}
}

func TestStore_List(t *testing.T) {
	reg := newTestRegistry(t)
	img := randomImage(t, 2)
	ref := reg.push(t, "test/img:v1", img)
	s := openStore(t)
	if _, err := s.Pull(context.Background(), ref, anonymous()); err != nil {
		t.Fatal(err)
	}
	got, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	m, _ := img.Manifest()
	raw, _ := img.RawManifest()
	size := int64(len(raw)) + m.Config.Size
	for _, l := range m.Layers {
		size += l.Size
	}
	want := []Entry{{Ref: reg.host + "/test/img:v1", Digest: digestOf(t, img), Size: size, Created: cf.Created.Time}}
	if !slices.Equal(got, want) {
		t.Errorf("List = %+v\nwant %+v", got, want)
	}
}

// blobDigests lists the manifest, config and layer digests of img.
func blobDigests(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	out := []v1.Hash{digestOf(t, img), m.Config.Digest}
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	return out
}

func TestStore_ConcurrentPullsAndRemove(t *testing.T) {
	reg := newTestRegistry(t)
	refA := reg.push(t, "test/a:v1", randomImage(t, 2))
	refB := reg.push(t, "test/b:v1", randomImage(t, 2))
	s := openStore(t)
	if _, err := s.Pull(context.Background(), refB, anonymous()); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 9)
	for range 8 {
		go func() {
			_, err := s.Pull(context.Background(), refA, anonymous())
			errs <- err
		}()
	}
	go func() { errs <- s.Remove(refB) }()
	for range 9 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	entries, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Ref != refA.String() {
		t.Fatalf("List = %+v, want only %s", entries, refA)
	}
	img, err := s.Image(entries[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		uncompressed(t, l)
	}
	if tmp, _ := os.ReadDir(filepath.Join(s.Dir(), tmpDir)); len(tmp) != 0 {
		t.Errorf("staging left behind: %v", tmp)
	}
}
