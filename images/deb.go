package images

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// ErrDebDownload marks a failure to download a Debian package, usually no
// network or apt lists that are missing or stale; callers such as tests may
// skip on it.
var ErrDebDownload = errors.New("could not download Debian package")

// debNameRE is Debian policy §5.6.1's package name syntax.
var debNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)

// Deb is one Debian binary package unpacked in the cache.
type Deb struct {
	Package DebPackage
	SHA256  string // hex digest of the .deb the tree came from
	Root    string // the package's files, as dpkg-deb -x lays them out
}

// DebFetcher provisions Debian binary packages, unpacked, into a cache.
// Each step is a function so tests can run without apt or the network.
type DebFetcher struct {
	// Download fetches the version of the package name that apt would
	// install into dir and returns the .deb's path and what it is.
	Download func(ctx context.Context, name, dir string) (string, DebPackage, error)
	// Extract unpacks the files of the .deb at deb under dir.
	Extract func(ctx context.Context, deb, dir string) error
}

// AptDebFetcher returns a DebFetcher using apt-get download and dpkg-deb
// from the host; nothing is installed.
func AptDebFetcher() DebFetcher {
	return DebFetcher{Download: DownloadDeb, Extract: ExtractDeb}
}

// Cache layout under cacheDir/debs/<package>:
//
//	pinned                  the sha256 of the .deb in use
//	sha256-<digest>/root/   the package's files
//	sha256-<digest>/package "<name> <version>"
//
// The first package fetched stays pinned, so what is built from it keeps
// its digest and later calls need neither apt nor the network; delete the
// directory to take a newer version. An entry is complete before it is
// renamed into place.
const (
	debCacheSubdir = "debs"
	debPinnedName  = "pinned"
	debRootName    = "root"
	debPackageName = "package"
	debEntryPrefix = "sha256-"
)

// Fetch returns the pinned unpacked copy of the Debian package name from
// cacheDir, downloading and unpacking it first when there is none.
func (f DebFetcher) Fetch(ctx context.Context, cacheDir, name string) (Deb, error) {
	if !debNameRE.MatchString(name) {
		return Deb{}, fmt.Errorf("bad Debian package name %q", name)
	}
	root := filepath.Join(cacheDir, debCacheSubdir, name)
	pinned := filepath.Join(root, debPinnedName)
	if d, err := cachedDeb(root, pinned); err == nil {
		return d, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return Deb{}, fmt.Errorf("create package cache: %w", err)
	}
	removeStaleTemps(root)
	tmp, err := os.MkdirTemp(root, tmpPrefix)
	if err != nil {
		return Deb{}, fmt.Errorf("create package cache: %w", err)
	}
	defer os.RemoveAll(tmp)

	digest, err := f.unpack(ctx, name, tmp)
	if err != nil {
		return Deb{}, err
	}
	if err := publish(filepath.Join(tmp, "entry"), filepath.Join(root, debEntryPrefix+digest)); err != nil {
		return Deb{}, err
	}
	// A concurrent caller may have pinned another version meanwhile; the
	// last one wins, and both entries are complete.
	if err := writeFileAtomic(pinned, []byte(digest+"\n"), 0o644); err != nil {
		return Deb{}, err
	}
	return debAt(root, digest)
}

// unpack downloads and extracts name under tmp and lays out a complete
// cache entry in tmp/entry. It returns the .deb's sha256.
func (f DebFetcher) unpack(ctx context.Context, name, tmp string) (string, error) {
	dl := filepath.Join(tmp, "download")
	entry := filepath.Join(tmp, "entry")
	for _, d := range []string{dl, entry, filepath.Join(entry, debRootName)} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return "", fmt.Errorf("create package cache: %w", err)
		}
	}
	deb, pkg, err := f.Download(ctx, name, dl)
	if err != nil {
		return "", err
	}
	if pkg.Name == "" || pkg.Version == "" || strings.ContainsAny(pkg.Name+pkg.Version, " \n") {
		return "", fmt.Errorf("download %s: bad package %q version %q", name, pkg.Name, pkg.Version)
	}
	digest, err := sha256File(deb)
	if err != nil {
		return "", fmt.Errorf("read downloaded %s: %w", name, err)
	}
	if err := f.Extract(ctx, deb, filepath.Join(entry, debRootName)); err != nil {
		return "", err
	}
	desc := pkg.Name + " " + pkg.Version + "\n"
	if err := os.WriteFile(filepath.Join(entry, debPackageName), []byte(desc), 0o644); err != nil {
		return "", fmt.Errorf("lay out package cache entry: %w", err)
	}
	return digest, nil
}

// cachedDeb returns the entry that pinned names, or an error when either
// is missing.
func cachedDeb(root, pinned string) (Deb, error) {
	b, err := os.ReadFile(pinned)
	if err != nil {
		return Deb{}, err
	}
	digest := strings.TrimSpace(string(b))
	if digest == "" || strings.ContainsAny(digest, `/.`) {
		return Deb{}, fmt.Errorf("bad package cache pin %s", pinned)
	}
	return debAt(root, digest)
}

func debAt(root, digest string) (Deb, error) {
	entry := filepath.Join(root, debEntryPrefix+digest)
	b, err := os.ReadFile(filepath.Join(entry, debPackageName))
	if err != nil {
		return Deb{}, fmt.Errorf("read package cache entry: %w", err)
	}
	name, version, ok := strings.Cut(strings.TrimSpace(string(b)), " ")
	if !ok {
		return Deb{}, fmt.Errorf("read package cache entry %s: bad %s file", entry, debPackageName)
	}
	return Deb{
		Package: DebPackage{Name: name, Version: version},
		SHA256:  digest,
		Root:    filepath.Join(entry, debRootName),
	}, nil
}

// DownloadDeb fetches into dir the version of Debian package name that
// the local apt lists name, with apt-get download, which checks the .deb
// against the signed lists. Lists can be missing (a fresh machine) or
// stale (the mirror has dropped the version they name): run as root, it
// then refreshes them with apt-get update and tries once more, as `make
// deps` would; otherwise the error says to run apt-get update.
func DownloadDeb(ctx context.Context, name, dir string) (string, DebPackage, error) {
	for _, tool := range []string{"apt-cache", "apt-get"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", DebPackage{}, fmt.Errorf("%w %s: %s not found: vmm takes it from Debian's archive with apt; run on Debian or Ubuntu", ErrDebDownload, name, tool)
		}
	}
	deb, pkg, err := downloadCandidate(ctx, name, dir)
	if err == nil || os.Geteuid() != 0 || ctx.Err() != nil {
		return deb, pkg, err
	}
	if _, uerr := runTool(ctx, "", "apt-get", "update", "-qq"); uerr != nil {
		return "", DebPackage{}, fmt.Errorf("%w (and apt-get update failed: %v)", err, uerr)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	for _, f := range left {
		os.Remove(f)
	}
	return downloadCandidate(ctx, name, dir)
}

func downloadCandidate(ctx context.Context, name, dir string) (string, DebPackage, error) {
	out, err := runTool(ctx, "", "apt-cache", "show", "--no-all-versions", name)
	if err != nil {
		return "", DebPackage{}, fmt.Errorf("%w %s: not in the local apt lists (%v); run `apt-get update` first", ErrDebDownload, name, err)
	}
	v, err := parseVersionField(out)
	if err != nil {
		return "", DebPackage{}, fmt.Errorf("%w %s: apt-cache show: %v", ErrDebDownload, name, err)
	}
	pkg := DebPackage{Name: name, Version: v}
	if _, err := runTool(ctx, dir, "apt-get", "download", "-q", pkg.Name+"="+pkg.Version); err != nil {
		return "", DebPackage{}, fmt.Errorf("%w %s: %w; run `apt-get update` first, and check that Debian's mirrors can be reached", ErrDebDownload, name, err)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	if len(debs) != 1 {
		return "", DebPackage{}, fmt.Errorf("%w %s: apt-get download left %d .deb files, want 1", ErrDebDownload, name, len(debs))
	}
	return debs[0], pkg, nil
}

// ExtractDeb unpacks the files of the .deb at deb under dir with dpkg-deb
// -x; nothing is installed and no maintainer script runs.
func ExtractDeb(ctx context.Context, deb, dir string) error {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		return fmt.Errorf("unpack %s: dpkg-deb not found; run on Debian or Ubuntu", filepath.Base(deb))
	}
	if _, err := runTool(ctx, "", "dpkg-deb", "-x", deb, dir); err != nil {
		return fmt.Errorf("unpack %s: %w", filepath.Base(deb), err)
	}
	return nil
}
