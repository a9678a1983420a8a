// Package container runs an OCI image as its own micro-VM, as `vmm run`
// does: the image is resolved (pulled if it is not stored), flattened into
// a read-only ext4 disk cached per image, and booted with a kernel, the
// cached guestinit initramfs and a small per-run archive appended to it.
// guestinit runs the workload and reports its exit status back over the
// run's Channel.
//
// The image side (registries, layers, ext4) lives in a separate program,
// vmm-images, that Prepare runs: the VM process then links none of it, so
// it starts faster and keeps less resident (docs/benchmarks.md). Package
// imageprep is that side.
package container

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"github.com/vmm-dev/vmm/guestinit/protocol"
	"github.com/vmm-dev/vmm/internal/companion"
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
	// CacheDir holds images, disks, kernels and initramfs archives; empty
	// means images.CacheDir(), decided by vmm-images.
	CacheDir string
	// Progress gets pull progress and the image side's warnings; a
	// terminal gets a progress bar. Nil discards them.
	Progress io.Writer
	// Tool is the vmm-images program; empty means FindTool's.
	Tool string
}

// Prepared is a run ready to boot: everything the image side made.
type Prepared struct {
	Ref       string // the image reference, normalised
	Digest    string // the image manifest's digest, sha256:...
	RunConfig protocol.RunConfig
	Rootfs    string
	// RootfsCached says the rootfs disk was already built.
	RootfsCached bool
	Kernel       string
	// Initrd is this run's initramfs, removed by Close: BaseInitrd (the
	// cached guestinit initramfs) with the run's config appended.
	Initrd     string
	BaseInitrd string
	Timings    Timings
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

// Config is the machine that boots p: the image's disk first and
// read-only (guestinit mounts protocol.RootfsDevice; every VM of the image
// shares the cached file), then m's own disks. It has no console or ports
// yet: Start adds them.
func (p *Prepared) Config(m Machine) vmm.Config {
	c := vmm.Config{
		Kernel: p.Kernel, Initrd: p.Initrd, Cmdline: Cmdline,
		MemoryBytes: m.MemoryBytes, CPUs: m.CPUs,
		Disks:   append([]vmm.Disk{{Path: p.Rootfs, ReadOnly: true}}, m.Disks...),
		NICs:    m.NICs,
		RNG:     true,
		Profile: m.Profile,
		Vmlinux: HostVmlinux,
		Seccomp: m.Seccomp,
	}
	if c.CPUs == 0 {
		c.CPUs = 1
	}
	if c.MemoryBytes == 0 {
		c.MemoryBytes = DefaultMemory
	}
	return c
}

// PrepareRequest is what vmm-images prepare reads on its stdin, as JSON.
type PrepareRequest struct {
	Spec     Spec
	Kernel   string // Machine.Kernel
	Initrd   string // Machine.Initrd
	CacheDir string
}

// PrepareReply is what vmm-images prepare writes on its stdout, as JSON:
// the Prepared run, or Error.
type PrepareReply struct {
	Prepared *Prepared `json:",omitempty"`
	Error    string    `json:",omitempty"`
}

// ToolEnv names the vmm-images program to run instead of the one beside
// the running executable.
const ToolEnv = "VMM_IMAGES"

// ToolName is the image side's program, installed beside vmm.
const ToolName = "vmm-images"

// FindTool returns the vmm-images program: $VMM_IMAGES, or vmm-images
// beside the running executable (where `make build` puts it).
func FindTool() (string, error) {
	return companion.Find(ToolName, ToolEnv)
}

// Prepare resolves the image, builds (or finds) its rootfs disk, the
// kernel and the initramfs, without starting anything, by running
// `vmm-images prepare`. Cancelling ctx stops it.
func Prepare(ctx context.Context, spec Spec, m Machine, opts Options) (*Prepared, error) {
	tool := opts.Tool
	if tool == "" {
		var err error
		if tool, err = FindTool(); err != nil {
			return nil, err
		}
	}
	req, err := json.Marshal(PrepareRequest{Spec: spec, Kernel: m.Kernel, Initrd: m.Initrd, CacheDir: opts.CacheDir})
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, tool, "prepare")
	cmd.Stdin = bytes.NewReader(req)
	cmd.Stdout = &out
	cmd.Stderr = opts.Progress
	runErr := cmd.Run()
	var reply PrepareReply
	if err := json.Unmarshal(out.Bytes(), &reply); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if runErr != nil {
			return nil, fmt.Errorf("%s prepare: %w", tool, runErr)
		}
		return nil, fmt.Errorf("%s prepare: unreadable reply: %w", tool, err)
	}
	if reply.Error != "" {
		return nil, errors.New(reply.Error)
	}
	if reply.Prepared == nil || runErr != nil {
		return nil, fmt.Errorf("%s prepare: %v, and no prepared run", tool, runErr)
	}
	return reply.Prepared, nil
}

// ShortDigest is "sha256:" and the first 12 hex digits, as docker shows.
func ShortDigest(d string) string {
	const n = len("sha256:") + 12
	if len(d) > n {
		return d[:n]
	}
	return d
}
