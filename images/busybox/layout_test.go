package busybox

import (
	"context"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/vmm-dev/vmm/images/oci"
)

func fakeImage(t *testing.T, script string) v1.Image {
	t.Helper()
	debs := newFakeDebs()
	debs.script = script
	img, err := imageFrom(context.Background(), debs.fetcher(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// layoutTags maps each ref.name in dir's index.json to its digest.
func layoutTags(t *testing.T, dir string) map[string]v1.Hash {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string]v1.Hash{}
	for _, d := range im.Manifests {
		tag := d.Annotations[refNameAnnotation]
		if _, dup := tags[tag]; dup {
			t.Errorf("tag %q twice in %s", tag, dir)
		}
		tags[tag] = d.Digest
		if d.Platform == nil || d.Platform.OS != "linux" || d.Platform.Architecture != "amd64" {
			t.Errorf("tag %q: platform %v, want linux/amd64", tag, d.Platform)
		}
	}
	return tags
}

func TestWriteLayout_ReadByLayoutAndStore(t *testing.T) {
	dir := t.TempDir() + "/layout"
	img := fakeImage(t, fakeScript)
	if err := WriteLayout(dir, "latest", img); err != nil {
		t.Fatal(err)
	}
	if tags := layoutTags(t, dir); len(tags) != 1 || tags["latest"] != digestOf(t, img) {
		t.Fatalf("layout tags %v, want latest = %s", tags, digestOf(t, img))
	}
	got, err := layout.Path(dir).Image(digestOf(t, img))
	if err != nil {
		t.Fatal(err)
	}
	if len(layerEntries(t, got)) != len(layerEntries(t, img)) {
		t.Error("layer read back from the layout differs")
	}

	store, err := oci.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ref, err := oci.ParseRef("oci-layout:" + dir + ":latest")
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []struct {
		name string
		do   func(context.Context, oci.Ref, oci.Options) (v1.Image, error)
	}{{"Pull", store.Pull}, {"Get", store.Get}} {
		got, err := op.do(context.Background(), ref, oci.Options{})
		if err != nil {
			t.Fatalf("Store.%s(%s): %v", op.name, ref, err)
		}
		if digestOf(t, got) != digestOf(t, img) {
			t.Errorf("Store.%s(%s) = %s, want %s", op.name, ref, digestOf(t, got), digestOf(t, img))
		}
	}
}

func TestWriteLayout_SameTag_Replaced_OthersKept(t *testing.T) {
	dir := t.TempDir()
	a, b := fakeImage(t, fakeScript), fakeImage(t, strings.Replace(fakeScript, "ls", "cat", 1))
	for _, w := range []struct {
		tag string
		img v1.Image
	}{{"v1", a}, {"keep", a}, {"v1", b}} {
		if err := WriteLayout(dir, w.tag, w.img); err != nil {
			t.Fatal(err)
		}
	}
	tags := layoutTags(t, dir)
	if len(tags) != 2 || tags["v1"] != digestOf(t, b) || tags["keep"] != digestOf(t, a) {
		t.Errorf("tags %v, want v1 = %s and keep = %s", tags, digestOf(t, b), digestOf(t, a))
	}
}

func TestWriteLayout_BadTag(t *testing.T) {
	img := fakeImage(t, fakeScript)
	for _, tag := range []string{"", "a:b", "a/b"} {
		if err := WriteLayout(t.TempDir(), tag, img); err == nil {
			t.Errorf("WriteLayout with tag %q: no error", tag)
		}
	}
}
