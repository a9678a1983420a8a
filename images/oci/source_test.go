package oci

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// writeLayout writes an OCI layout holding imgs, each tagged with its
// ref.name annotation, in order.
func writeLayout(t *testing.T, dir string, imgs map[string]v1.Image, order ...string) {
	t.Helper()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range order {
		if err := p.AppendImage(imgs[tag], layout.WithAnnotations(map[string]string{refNameAnnotation: tag})); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStore_Get_OCILayout(t *testing.T) {
	dir := t.TempDir()
	imgs := map[string]v1.Image{"v1": randomImage(t, 1), "v2": randomImage(t, 2)}
	writeLayout(t, dir, imgs, "v1", "v2")
	s := openStore(t)
	for _, tc := range []struct {
		ref  string
		want v1.Image
	}{
		{"oci-layout:" + dir + ":v2", imgs["v2"]},
		{"oci-layout:" + dir + ":v1", imgs["v1"]},
		{"oci-layout:" + dir, imgs["v1"]}, // no tag: the first
	} {
		got, err := s.Get(context.Background(), mustParseRef(t, tc.ref), Options{})
		if err != nil {
			t.Fatalf("%s: %v", tc.ref, err)
		}
		if digestOf(t, got) != digestOf(t, tc.want) {
			t.Errorf("%s: got %s, want %s", tc.ref, digestOf(t, got), digestOf(t, tc.want))
		}
	}
	entries, _ := s.List()
	if len(entries) != 3 || entries[0].Ref != "oci-layout:"+dir {
		t.Errorf("List = %+v, want the three layout references", entries)
	}
}

func TestStore_Get_OCILayout_ReadsAgainWhenChanged(t *testing.T) {
	dir := t.TempDir()
	first := randomImage(t, 1)
	writeLayout(t, dir, map[string]v1.Image{"v1": first}, "v1")
	s := openStore(t)
	ref := mustParseRef(t, "oci-layout:"+dir+":v1")
	if _, err := s.Get(context.Background(), ref, Options{}); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(dir)
	second := randomImage(t, 1)
	writeLayout(t, dir, map[string]v1.Image{"v1": second}, "v1")

	got, err := s.Get(context.Background(), ref, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, got) != digestOf(t, second) {
		t.Error("Get served the old layout image from the store")
	}
}

func TestStore_Get_OCILayout_IndexPicksPlatform(t *testing.T) {
	dir := t.TempDir()
	amd, arm := randomImage(t, 1), randomImage(t, 1)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
	)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{refNameAnnotation: "multi"})); err != nil {
		t.Fatal(err)
	}
	got, err := openStore(t).Get(context.Background(), mustParseRef(t, "oci-layout:"+dir+":multi"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, got) != digestOf(t, amd) {
		t.Error("did not pick linux/amd64 from the layout's index")
	}
}

func TestStore_Get_OCILayout_Errors(t *testing.T) {
	dir := t.TempDir()
	writeLayout(t, dir, map[string]v1.Image{"v1": randomImage(t, 1)}, "v1")
	notLayout := t.TempDir()
	s := openStore(t)
	for _, tc := range []struct {
		ref  string
		kind error
		msg  string
	}{
		{"oci-layout:" + dir + ":v3", ErrNotFound, "image oci-layout:" + dir + ":v3 not found in oci-layout directory " + dir + ": check the name and the tag or digest"},
		{"oci-layout:" + dir + "/missing", ErrNoSource, "oci-layout directory " + dir + "/missing does not exist"},
		{"oci-layout:" + notLayout, ErrNoSource, "cannot read oci-layout directory " + notLayout + ": no index.json: not an OCI image layout"},
	} {
		_, err := s.Get(context.Background(), mustParseRef(t, tc.ref), Options{})
		if !errors.Is(err, tc.kind) {
			t.Errorf("%s: %v, want %v", tc.ref, err, tc.kind)
			continue
		}
		if err.Error() != tc.msg {
			t.Errorf("%s: error %q, want %q", tc.ref, err, tc.msg)
		}
	}
}

func TestStore_Get_OCILayout_CorruptBlob_StoreUnchanged(t *testing.T) {
	dir := t.TempDir()
	img := randomImage(t, 2)
	writeLayout(t, dir, map[string]v1.Image{"v1": img}, "v1")
	layers, _ := img.Layers()
	d, _ := layers[1].Digest()
	blob := filepath.Join(dir, "blobs", d.Algorithm, d.Hex)
	b, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if err := os.WriteFile(blob, b, 0o644); err != nil {
		t.Fatal(err)
	}
	s := openStore(t)
	before := storeFiles(t, s)

	_, err = s.Get(context.Background(), mustParseRef(t, "oci-layout:"+dir), Options{})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), d.String()) {
		t.Fatalf("got %v, want ErrCorrupt naming %s", err, d)
	}
	if after := storeFiles(t, s); !slices.Equal(before, after) {
		t.Errorf("store changed:\nbefore %q\nafter  %q", before, after)
	}
}

func TestStore_Get_DockerArchive(t *testing.T) {
	img := randomImage(t, 2)
	path := filepath.Join(t.TempDir(), "img.tar")
	if err := tarball.WriteToFile(path, name.MustParseReference("test/img:v1"), img); err != nil {
		t.Fatal(err)
	}
	s := openStore(t)

	got, err := s.Get(context.Background(), mustParseRef(t, "docker-archive:"+path), Options{})
	if err != nil {
		t.Fatal(err)
	}
	// docker save keeps config and layers; the manifest is rebuilt.
	gotCfg, _ := got.ConfigName()
	wantCfg, _ := img.ConfigName()
	if gotCfg != wantCfg {
		t.Errorf("config %s, want %s", gotCfg, wantCfg)
	}
	gotLayers, err := got.Layers()
	if err != nil {
		t.Fatal(err)
	}
	wantLayers, _ := img.Layers()
	if len(gotLayers) != len(wantLayers) {
		t.Fatalf("%d layers, want %d", len(gotLayers), len(wantLayers))
	}
	for i := range gotLayers {
		g, _ := gotLayers[i].Digest()
		w, _ := wantLayers[i].Digest()
		if g != w {
			t.Errorf("layer %d: %s, want %s", i, g, w)
		}
	}

	_, err = s.Get(context.Background(), mustParseRef(t, "docker-archive:"+path+".missing"), Options{})
	if !errors.Is(err, ErrNoSource) || err.Error() != "docker-archive file "+path+".missing does not exist" {
		t.Errorf("missing archive: %v", err)
	}
}

// docker save writes layers uncompressed; tarball compresses them to give
// them digests, and the store keeps those compressed copies.
func TestStore_Get_DockerArchive_UncompressedLayers(t *testing.T) {
	img := randomImage(t, 2)
	cfgName, _ := img.ConfigName()
	cfg, _ := img.RawConfigFile()
	layers, _ := img.Layers()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, b []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(b)
	}
	add(cfgName.Hex+".json", cfg)
	var names []string
	for i, l := range layers {
		names = append(names, fmt.Sprintf("layer%d/layer.tar", i))
		add(names[i], uncompressed(t, l))
	}
	m, _ := json.Marshal([]map[string]any{{"Config": cfgName.Hex + ".json", "RepoTags": []string{"test/img:v1"}, "Layers": names}})
	add("manifest.json", m)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "saved.tar")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	got, err := openStore(t).Get(context.Background(), mustParseRef(t, "docker-archive:"+path), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := got.ConfigName(); c != cfgName {
		t.Errorf("config %s, want %s", c, cfgName)
	}
	gotLayers, err := got.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for i := range layers {
		if !bytes.Equal(uncompressed(t, gotLayers[i]), uncompressed(t, layers[i])) {
			t.Errorf("layer %d differs after the round trip", i)
		}
	}
}
