// Package container runs an OCI image as its own micro-VM, as `vmm run`
// does: the image is resolved (pulled if it is not stored), flattened into
// a read-only ext4 disk cached per image, and booted with a kernel, the
// cached guestinit initramfs and a small per-run archive appended to it.
// guestinit runs the workload and reports its exit status back over the
// run's Channel.
package container

import (
	"context"
	"errors"
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
	"github.com/vmm-dev/vmm/vmm"
)

// Spec is what to run: the image and docker run's overrides of its
// config. Env holds final K=V entries (or a bare K to unset K): the caller
// resolves --env-file and -e K against its own environment.
type Spec struct {
	Image       string
	Args        []string
	Entrypoint  *[]string
	Env         []string
	WorkingDir  string
	User        string
	Hostname    string
	TTY         bool
	Interactive bool
	Terminal    *protocol.TerminalSize
	Network     *protocol.NetworkConfig
}

// Machine is the VM the workload runs in.
type Machine struct {
	CPUs        int    // default 1
	MemoryBytes uint64 // default DefaultMemory
	Disks       []vmm.Disk
	NICs        []vmm.NIC
	// Kernel is a bzImage to boot instead of Debian's cloud kernel; its
	// drivers for virtio-pci, blk, console, ext4 and overlayfs must be
	// built in. Initrd replaces the guestinit initramfs the run archive is
	// appended to.
	Kernel, Initrd string
	Profile        vmm.Profile
	// Seccomp confines the process once the VM runs (vmm.Config.Seccomp).
	Seccomp bool
}

// DefaultMemory is a guest's RAM when Machine.MemoryBytes is 0.
const DefaultMemory = 512 << 20

// Cmdline is the kernel command line of a run: the serial console carries
// only the kernel's and guestinit's own messages, never the workload's.
const Cmdline = "console=ttyS0 panic=-1 quiet"

// Options are where a run keeps and reports things.
type Options struct {
	CacheDir string    // images.CacheDir() for the CLI
	Progress io.Writer // pull progress (a bar on a terminal); nil for none
}

// Prepared is a run ready to boot.
type Prepared struct {
	Ref       oci.Ref
	Digest    v1.Hash
	RunConfig protocol.RunConfig
	Rootfs    string
	Kernel    string
	// Initrd is this run's initramfs, removed by Close: BaseInitrd (the
	// cached guestinit initramfs) with the run's config appended.
	Initrd      string
	BaseInitrd  string
	Config      vmm.Config
	RootfsStats rootfs.Stats
	Timings     Timings
}

// Timings are how long each preparation step took.
type Timings struct {
	Image, Rootfs, Kernel, Initramfs time.Duration
}

// Close removes the run's own files.
func (p *Prepared) Close() error {
	if p.Initrd == "" {
		return nil
	}
	err := os.Remove(p.Initrd)
	p.Initrd = ""
	return err
}

// Prepare resolves the image, builds (or finds) its rootfs disk, the
// kernel and the initramfs, and assembles the machine's Config, without
// starting anything. The Config has no console or ports yet: Run adds
// them.
func Prepare(ctx context.Context, spec Spec, m Machine, opts Options) (*Prepared, error) {
	if opts.CacheDir == "" {
		return nil, errors.New("container: no cache directory")
	}
	ref, err := oci.ParseRef(spec.Image)
	if err != nil {
		return nil, err
	}
	p := &Prepared{Ref: ref}
	t := time.Now()
	store, err := oci.Open(filepath.Join(opts.CacheDir, "oci"))
	if err != nil {
		return nil, err
	}
	img, err := store.Get(ctx, ref, oci.Options{Progress: opts.Progress})
	if err != nil {
		return nil, err
	}
	if p.Digest, err = img.Digest(); err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image %s: read its config: %w", ref, err)
	}
	p.Timings.Image = time.Since(t)

	t = time.Now()
	p.Rootfs, p.RootfsStats, err = rootfs.Build(ctx, img, opts.CacheDir, rootfs.Options{})
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	p.Timings.Rootfs = time.Since(t)

	t = time.Now()
	base, err := kernelAndInitramfs(ctx, p, m, opts.CacheDir)
	if err != nil {
		return nil, err
	}
	p.Timings.Kernel = time.Since(t)

	t = time.Now()
	p.BaseInitrd = base
	p.RunConfig = runConfig(spec, cf.Config)
	if p.Initrd, err = writeRunInitrd(opts.CacheDir, base, p.RunConfig); err != nil {
		return nil, err
	}
	p.Timings.Initramfs = time.Since(t)

	p.Config = vmm.Config{
		Kernel: p.Kernel, Initrd: p.Initrd, Cmdline: Cmdline,
		MemoryBytes: m.MemoryBytes, CPUs: m.CPUs,
		// The image's disk first: guestinit mounts protocol.RootfsDevice.
		// Read-only, so every VM of the image can share the cached file.
		Disks:   append([]vmm.Disk{{Path: p.Rootfs, ReadOnly: true}}, m.Disks...),
		NICs:    m.NICs,
		RNG:     true,
		Profile: m.Profile,
		Seccomp: m.Seccomp,
	}
	if p.Config.CPUs == 0 {
		p.Config.CPUs = 1
	}
	if p.Config.MemoryBytes == 0 {
		p.Config.MemoryBytes = DefaultMemory
	}
	return p, nil
}

// kernelAndInitramfs sets p.Kernel and returns the initramfs the run's
// archive is appended to.
func kernelAndInitramfs(ctx context.Context, p *Prepared, m Machine, cacheDir string) (string, error) {
	if m.Kernel != "" {
		p.Kernel = m.Kernel
		if m.Initrd != "" {
			return m.Initrd, nil
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
	if m.Initrd != "" {
		return m.Initrd, nil
	}
	base, err := images.GuestinitInitramfsWithModules(ctx, cacheDir, k, images.GuestModules())
	if err != nil {
		return "", fmt.Errorf("guestinit initramfs: %w", err)
	}
	return base, nil
}

// runConfig is what guestinit gets: the image's config and the run's
// overrides, which guestinit combines by docker's rules.
func runConfig(spec Spec, img v1.Config) protocol.RunConfig {
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
