// Package imageprep is the image side of a container run, what
// `vmm-images prepare` does for container.Prepare: it resolves the image
// (pulling it if it is not stored), builds or finds its read-only rootfs
// disk, the kernel and the cached guestinit initramfs, and writes the
// run's own initramfs with its config appended. It starts nothing.
package imageprep

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/vmm-dev/vmm/guestinit/protocol"
	"github.com/vmm-dev/vmm/images"
	"github.com/vmm-dev/vmm/images/oci"
	"github.com/vmm-dev/vmm/images/rootfs"
	"github.com/vmm-dev/vmm/vmm/container"
)

// Prepare does the image side of req; progress gets pull progress (nil
// for none).
func Prepare(ctx context.Context, req container.PrepareRequest, progress io.Writer) (*container.Prepared, error) {
	cacheDir := req.CacheDir
	if cacheDir == "" {
		var err error
		if cacheDir, err = images.CacheDir(); err != nil {
			return nil, err
		}
	}
	ref, err := oci.ParseRef(req.Spec.Image)
	if err != nil {
		return nil, err
	}
	p := &container.Prepared{Ref: ref.String()}
	t := time.Now()
	store, err := oci.Open(filepath.Join(cacheDir, "oci"))
	if err != nil {
		return nil, err
	}
	img, err := store.Get(ctx, ref, oci.Options{Progress: progress})
	if err != nil {
		return nil, err
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	p.Digest = digest.String()
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image %s: read its config: %w", ref, err)
	}
	p.Timings.Image = time.Since(t)

	t = time.Now()
	var stats rootfs.Stats
	p.Rootfs, stats, err = rootfs.Build(ctx, img, cacheDir, rootfs.Options{})
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	p.RootfsCached = stats.Cached
	p.Timings.Rootfs = time.Since(t)

	t = time.Now()
	base, err := kernelAndInitramfs(ctx, p, req, cacheDir)
	if err != nil {
		return nil, err
	}
	p.Timings.Kernel = time.Since(t)

	t = time.Now()
	p.BaseInitrd = base
	p.RunConfig = runConfig(req.Spec, cf.Config)
	if p.Initrd, err = writeRunInitrd(cacheDir, base, p.RunConfig); err != nil {
		return nil, err
	}
	p.Timings.Initramfs = time.Since(t)
	return p, nil
}

// kernelAndInitramfs sets p.Kernel and returns the initramfs the run's
// archive is appended to.
func kernelAndInitramfs(ctx context.Context, p *container.Prepared, req container.PrepareRequest, cacheDir string) (string, error) {
	if req.Kernel != "" {
		p.Kernel = req.Kernel
		if req.Initrd != "" {
			return req.Initrd, nil
		}
		base, err := images.GuestinitInitramfs(ctx, cacheDir)
		if err != nil {
			return "", fmt.Errorf("guestinit initramfs: %w", err)
		}
		return base, nil
	}
	k, err := images.DebianCloudKernel(ctx, cacheDir)
	if err != nil {
		return "", fmt.Errorf("guest kernel: %w", err)
	}
	p.Kernel = k.Path
	if req.Initrd != "" {
		return req.Initrd, nil
	}
	base, err := images.GuestinitInitramfsWithModules(ctx, cacheDir, k, images.GuestModules())
	if err != nil {
		return "", fmt.Errorf("guestinit initramfs: %w", err)
	}
	return base, nil
}

// runConfig is what guestinit gets: the image's config and the run's
// overrides, which guestinit combines by docker's rules.
func runConfig(spec container.Spec, img v1.Config) protocol.RunConfig {
	return protocol.RunConfig{
		Version: protocol.RunConfigVersion,
		Image: protocol.ImageConfig{
			Entrypoint: img.Entrypoint, Cmd: img.Cmd, Env: img.Env,
			WorkingDir: img.WorkingDir, User: img.User,
		},
		Args: spec.Args, Entrypoint: spec.Entrypoint, Env: spec.Env,
		WorkingDir: spec.WorkingDir, User: spec.User, Hostname: spec.Hostname,
		TTY: spec.TTY, Interactive: spec.Interactive, Terminal: spec.Terminal,
		Network: spec.Network,
	}
}

// writeRunInitrd writes the run's initramfs under cacheDir/run.
func writeRunInitrd(cacheDir, base string, cfg protocol.RunConfig) (string, error) {
	dir := filepath.Join(cacheDir, "run")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	removeStale(dir)
	f, err := os.CreateTemp(dir, "initrd-*.cpio")
	if err != nil {
		return "", fmt.Errorf("create the run's initramfs: %w", err)
	}
	err = images.WriteRunInitramfs(f, base, cfg)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("write the run's initramfs: %w", err)
	}
	return f.Name(), nil
}

// removeStale removes run initramfs files a crashed vmm left behind. A
// machine reads its initrd while it is built, so an hour-old file is no
// run's any more.
func removeStale(dir string) {
	old, _ := filepath.Glob(filepath.Join(dir, "initrd-*.cpio"))
	for _, p := range old {
		if fi, err := os.Stat(p); err == nil && time.Since(fi.ModTime()) > time.Hour {
			os.Remove(p)
		}
	}
}
