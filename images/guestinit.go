package images

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// GuestinitPackage is the import path of guestinit's main package.
const GuestinitPackage = "github.com/vmm-dev/vmm/guestinit/cmd/guestinit"

// BuildGuestinit compiles guestinit as a static linux/amd64 binary at
// outPath. It runs the go command, so it needs a Go toolchain and must run
// inside the vmm source tree.
func BuildGuestinit(ctx context.Context, outPath string) error {
	if _, err := exec.LookPath("go"); err != nil {
		return fmt.Errorf("build guestinit: the go command is not on PATH: install Go 1.26 or later")
	}
	cmd := exec.CommandContext(ctx, "go", "build",
		"-trimpath", "-buildvcs=false", "-ldflags=-s -w",
		"-o", outPath, GuestinitPackage)
	// Static and for the guest whatever the host is: the guest has no libc.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build guestinit: go build %s: %v: %s (there is no prebuilt guestinit: `make build` puts one beside bin/vmm, or set %s to one; building needs the vmm source tree as the working directory)",
			GuestinitPackage, err, strings.TrimSpace(stderr.String()), GuestinitEnv)
	}
	return nil
}

// GuestinitInitramfs builds guestinit and returns the path of an initramfs
// holding it as /init, cached in cacheDir by the archive's sha256: building
// is cheap (Go's build cache), writing a new file is not needed when the
// binary did not change.
func GuestinitInitramfs(ctx context.Context, cacheDir string) (string, error) {
	return guestinitInitramfs(ctx, cacheDir, "", nil)
}

// GuestinitInitramfsWithModules is GuestinitInitramfs with kernel k's
// modules named by modules (GuestModules for vmm's devices) and everything
// they depend on, decompressed, and the list guestinit loads them from. The
// archive is cached by its sha256, so its key covers the kernel release,
// the guestinit binary and the module set.
func GuestinitInitramfsWithModules(ctx context.Context, cacheDir string, k Kernel, modules []string) (string, error) {
	if k.ModulesDir == "" {
		return "", fmt.Errorf("kernel %s: no modules tree to take %s from", k.Version, strings.Join(modules, ", "))
	}
	// The modules tree sits in a kernel cache entry named by the package's
	// digest, so its path and the module names identify the files.
	key := "modules\n" + k.ModulesDir + "\n" + k.Version + "\n" + strings.Join(modules, ",")
	return guestinitInitramfs(ctx, cacheDir, key, func() ([]File, error) {
		mods, err := ResolveModules(k.ModulesDir, modules)
		if err != nil {
			return nil, fmt.Errorf("kernel %s: %w", k.Version, err)
		}
		return ModuleFiles(k.Version, mods), nil
	})
}

// guestinitInitramfs returns the cached archive of guestinit and the files
// extra gives. An index entry maps guestinit's digest and extraKey (what
// extra's files depend on) to the archive, so a run that finds one reads
// neither the modules nor writes an archive: about 40 ms of every start.
func guestinitInitramfs(ctx context.Context, cacheDir, extraKey string, extra func() ([]File, error)) (string, error) {
	dir := filepath.Join(cacheDir, "initramfs")
	if err := os.MkdirAll(filepath.Join(dir, "index"), 0o755); err != nil {
		return "", fmt.Errorf("create initramfs cache: %w", err)
	}
	removeStaleTemps(dir)
	tmp, err := os.MkdirTemp(dir, tmpPrefix)
	if err != nil {
		return "", fmt.Errorf("create initramfs cache: %w", err)
	}
	defer os.RemoveAll(tmp)

	bin := prebuiltGuestinit()
	if bin == "" {
		bin = filepath.Join(tmp, "guestinit")
		if err := BuildGuestinit(ctx, bin); err != nil {
			return "", err
		}
	}
	init, err := os.ReadFile(bin)
	if err != nil {
		return "", fmt.Errorf("read built guestinit: %w", err)
	}
	initSum := sha256.Sum256(init)
	indexKey := sha256.Sum256([]byte(hex.EncodeToString(initSum[:]) + "\n" + extraKey))
	index := filepath.Join(dir, "index", hex.EncodeToString(indexKey[:]))
	if b, err := os.ReadFile(index); err == nil {
		if p := filepath.Join(dir, strings.TrimSpace(string(b))); filepath.Dir(p) == dir {
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
	}
	files := []File{{Path: "/init", Mode: 0o755, Data: init}}
	if extra != nil {
		more, err := extra()
		if err != nil {
			return "", err
		}
		files = append(files, more...)
	}
	path, err := cacheInitramfs(dir, files)
	if err != nil {
		return "", err
	}
	// Best effort: without the entry the next start builds the archive.
	writeFileAtomic(index, []byte(filepath.Base(path)+"\n"), 0o644)
	return path, nil
}

// GuestinitEnv names a prebuilt guestinit binary to use instead of
// building one.
const GuestinitEnv = "VMM_GUESTINIT"

// prebuiltGuestinit returns the guestinit binary an installed vmm ships
// with: $VMM_GUESTINIT, or a file named guestinit beside the running
// executable (`make build` puts bin/guestinit beside bin/vmm). Empty
// means there is none, and guestinit is built from the source tree.
func prebuiltGuestinit() string {
	if p := os.Getenv(GuestinitEnv); p != "" {
		return p
	}
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	p := filepath.Join(filepath.Dir(exe), "guestinit")
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
		return p
	}
	return ""
}

// cacheInitramfs writes the archive of files into dir under its digest,
// unless an identical one is already there.
func cacheInitramfs(dir string, files []File) (string, error) {
	var buf bytes.Buffer
	if err := BuildInitramfs(&buf, files); err != nil {
		return "", err
	}
	sum := sha256.Sum256(buf.Bytes())
	path := filepath.Join(dir, "sha256-"+hex.EncodeToString(sum[:])+".cpio")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := writeFileAtomic(path, buf.Bytes(), 0o644); err != nil {
		return "", err
	}
	return path, nil
}
