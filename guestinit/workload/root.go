package workload

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// maxSymlinks is how many symlinks one lookup follows, as Linux's
// MAXSYMLINKS.
const maxSymlinks = 40

// errLoop is ELOOP's condition for a lookup inside a root.
var errLoop = errors.New("too many levels of symbolic links")

// inRoot returns the host path of name as a process chrooted into root
// would reach it: ".." stops at root and symlinks, absolute ones
// included, resolve inside root. Images are full of absolute links
// (alpine's /bin/sh is /bin/busybox), so os.Root, which refuses them,
// does not fit. Components that do not exist are kept as they are, so a
// directory can be created at the result. With root "/" this is the
// kernel's own lookup.
func inRoot(root, name string) (string, error) {
	if root == "" {
		root = "/"
	}
	resolved, rest, links := "/", name, 0
	for rest != "" {
		var comp string
		comp, rest, _ = strings.Cut(strings.TrimLeft(rest, "/"), "/")
		switch comp {
		case "", ".":
			continue
		case "..":
			resolved = path.Dir(resolved)
			continue
		}
		next := path.Join(resolved, comp)
		fi, err := os.Lstat(filepath.Join(root, next))
		if errors.Is(err, fs.ErrNotExist) {
			return filepath.Join(root, path.Join(next, rest)), nil
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			resolved = next
			continue
		}
		if links++; links > maxSymlinks {
			return "", fmt.Errorf("%s: %w", name, errLoop)
		}
		target, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			resolved = "/"
		}
		rest = target + "/" + rest
	}
	return filepath.Join(root, resolved), nil
}

// makeWorkdir creates the working directory when the image lacks it, as
// docker does (owned by root, mode 0755), and refuses one that is not a
// directory.
func makeWorkdir(root, dir string) error {
	p, err := inRoot(root, dir)
	if err != nil {
		return fmt.Errorf("working directory %s: %w", dir, err)
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		return fmt.Errorf("working directory %s: %w", dir, err)
	}
	return nil
}

// MakeWorkdir creates spec's working directory inside root, as docker
// does when it creates the container: before the workload starts, so
// anything else run there (an exec) finds it too.
func MakeWorkdir(root string, spec Spec) error {
	if root == "" {
		root = "/"
	}
	return makeWorkdir(root, spec.Dir)
}

// RootFS returns the image tree at dir as an fs.FS for Resolve, with
// symlinks resolved inside dir as they will be once the workload is
// chrooted there. os.DirFS would follow an absolute link (an /etc/passwd
// pointing at /usr/share/...) to the host's file instead. In the guest,
// after the switch into the image, os.DirFS("/") does the same job.
func RootFS(dir string) fs.FS { return rootFS(dir) }

type rootFS string

func (r rootFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	p, err := inRoot(string(r), name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return os.Open(p)
}
