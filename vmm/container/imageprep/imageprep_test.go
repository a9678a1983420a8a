package imageprep

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/vmm-dev/vmm/guestinit/protocol"
	"github.com/vmm-dev/vmm/vmm"
	"github.com/vmm-dev/vmm/vmm/container"
)

func TestRunConfig_CarriesImageAndOverrides(t *testing.T) {
	ep := []string{"/bin/tool"}
	spec := container.Spec{Args: []string{"a", "b"}, Entrypoint: &ep, Env: []string{"K=V", "GONE"}, WorkingDir: "/w",
		User: "app", Hostname: "box", TTY: true, Interactive: true, Terminal: &protocol.TerminalSize{Rows: 3, Cols: 4}}
	img := v1.Config{Entrypoint: []string{"/e"}, Cmd: []string{"c"}, Env: []string{"PATH=/bin"}, WorkingDir: "/img", User: "1:2"}
	rc := runConfig(spec, img)
	if err := rc.Validate(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rc.Image.Entrypoint, img.Entrypoint) || !slices.Equal(rc.Image.Cmd, img.Cmd) || rc.Image.User != "1:2" ||
		rc.Image.WorkingDir != "/img" || !slices.Equal(rc.Args, spec.Args) || rc.Entrypoint == nil || !slices.Equal(*rc.Entrypoint, ep) ||
		rc.User != "app" || rc.Hostname != "box" || !rc.TTY || !rc.Interactive || rc.Terminal.Cols != 4 || !slices.Equal(rc.Env, spec.Env) {
		t.Errorf("runConfig = %+v", rc)
	}
}

// Prepare with a micro-guest kernel and a stand-in initramfs: the image is
// read from a layout, its disk built read-only as /dev/vda ahead of the
// user's disks, and the run's initramfs is the base plus the config.
func TestPrepare(t *testing.T) {
	dir := t.TempDir()
	lay := filepath.Join(dir, "layout")
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Config(img, v1.Config{Cmd: []string{"/bin/true"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := layout.Write(lay, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "t"})); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, "base.cpio")
	if err := os.WriteFile(base, make([]byte, 512), 0o644); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(dir, "cache")
	stale := filepath.Join(cache, "run", "initrd-old.cpio")
	os.MkdirAll(filepath.Dir(stale), 0o755)
	os.WriteFile(stale, nil, 0o644)
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(stale, old, old)

	prep, err := Prepare(context.Background(), container.PrepareRequest{
		Spec:   container.Spec{Image: "oci-layout:" + lay + ":t", Args: []string{"x"}},
		Kernel: "/k", Initrd: base, CacheDir: cache}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	cfg := prep.Config(container.Machine{Disks: []vmm.Disk{{Path: "/data"}}})
	if prep.Digest != want.String() || cfg.Kernel != "/k" || cfg.Cmdline != container.Cmdline ||
		cfg.CPUs != 1 || cfg.MemoryBytes != container.DefaultMemory || prep.RootfsCached {
		t.Errorf("prepared %+v, config %+v", prep, cfg)
	}
	if d := cfg.Disks; len(d) != 2 || d[0].Path != prep.Rootfs || !d[0].ReadOnly || d[1].Path != "/data" {
		t.Errorf("disks %+v, want the rootfs read-only first", d)
	}
	if got := prep.RunConfig.Image.Cmd; !slices.Equal(got, []string{"/bin/true"}) {
		t.Errorf("image Cmd %q", got)
	}
	fi, err := os.Stat(prep.Initrd)
	if err != nil || fi.Size() <= 512 {
		t.Fatalf("run initramfs: %v, %v", fi, err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale run initramfs left: %v", err)
	}
	initrd := prep.Initrd
	if err := prep.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(initrd); !os.IsNotExist(err) {
		t.Errorf("Close left %s", initrd)
	}
}
