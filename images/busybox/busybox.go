// Package busybox builds a small real OCI image locally, with no registry:
// Debian's statically linked busybox and a symlink per applet, for the
// README's demo and for end-to-end tests.
package busybox

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/vmm-dev/vmm/images"
)

// Package is the Debian package the image's busybox comes from.
const Package = "busybox-static"

// binaryPath is where the package installs busybox.
const binaryPath = "bin/busybox"

// epoch is every timestamp in the image, so the same busybox always gives
// the same digest.
func epoch() time.Time { return time.Unix(0, 0).UTC() }

// Image returns a one-layer linux/amd64 OCI image holding Debian's
// busybox-static. The package is downloaded with apt-get the first time
// and kept under cacheDir (images.CacheDir() for vmm); later calls, and
// the image digest, stay the same without apt or the network.
func Image(ctx context.Context, cacheDir string) (v1.Image, error) {
	return imageFrom(ctx, images.AptDebFetcher(), cacheDir)
}

func imageFrom(ctx context.Context, f images.DebFetcher, cacheDir string) (v1.Image, error) {
	deb, err := f.Fetch(ctx, cacheDir, Package)
	if err != nil {
		return nil, fmt.Errorf("busybox image: %w", err)
	}
	bin := filepath.Join(deb.Root, binaryPath)
	body, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("busybox image: %s %s: %w", deb.Package.Name, deb.Package.Version, err)
	}
	applets, err := listApplets(ctx, bin)
	if err != nil {
		return nil, fmt.Errorf("busybox image: %w", err)
	}
	layer, err := newLayer(body, applets)
	if err != nil {
		return nil, fmt.Errorf("busybox image: %w", err)
	}
	return newImage(layer, deb.Package)
}

// appletRE is what an applet name may look like: a file name in /bin
// ("[" and "[[" included), never a path.
var appletRE = regexp.MustCompile(`^[A-Za-z0-9_.\[-]+$`)

// listApplets asks the binary itself which applets it has: `busybox
// --list` prints one name a line. Running it is safe on the host: it is
// a static linux/amd64 binary from a package apt checked against Debian's
// signed lists.
func listApplets(ctx context.Context, bin string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--list")
	cmd.Env = []string{}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s --list: %w: %s", bin, err, strings.TrimSpace(stderr.String()))
	}
	return parseApplets(stdout.String())
}

// parseApplets checks and sorts the output of busybox --list. "busybox"
// itself is left out: the binary has that name already.
func parseApplets(list string) ([]string, error) {
	var applets []string
	for _, name := range strings.Fields(list) {
		if !appletRE.MatchString(name) || name == "." || name == ".." {
			return nil, fmt.Errorf("busybox --list: bad applet name %q", name)
		}
		if name != "busybox" {
			applets = append(applets, name)
		}
	}
	if len(applets) == 0 {
		return nil, fmt.Errorf("busybox --list: no applets")
	}
	slices.Sort(applets)
	return slices.Compact(applets), nil
}

// newImage wraps layer in an OCI image whose config runs sh.
func newImage(layer v1.Layer, pkg images.DebPackage) (v1.Image, error) {
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History: v1.History{
			Created:   v1.Time{Time: epoch()},
			CreatedBy: fmt.Sprintf("vmm images/busybox: Debian %s %s", pkg.Name, pkg.Version),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("busybox image: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("busybox image: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Created = v1.Time{Time: epoch()}
	cf.Config = v1.Config{
		Cmd: []string{"sh"},
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Labels: map[string]string{
			"org.opencontainers.image.title":   "busybox",
			"org.opencontainers.image.version": pkg.Version,
		},
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("busybox image: %w", err)
	}
	return img, nil
}
