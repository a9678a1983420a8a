package agent

import (
	"errors"
	"fmt"
	"os"
	"path"

	"golang.org/x/sys/unix"
)

// fileRoot resolves guest paths inside a directory the way a process
// chrooted there sees them: ".." stops at the root and symlinks, absolute
// ones included, resolve inside it (openat2's RESOLVE_IN_ROOT, Linux 5.6),
// so a path the host names never reaches outside the root. os.Root
// confines as well but refuses absolute symlinks, which images are full
// of (/bin/sh -> /bin/busybox), and a file put at /etc/x must be the one
// a program run in the root reads there.
type fileRoot struct {
	dir string
	fd  int // O_PATH descriptor of dir
}

func openFileRoot(dir string) (*fileRoot, error) {
	if dir == "" {
		dir = "/"
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open root", Path: dir, Err: err}
	}
	return &fileRoot{dir: dir, fd: fd}, nil
}

func (r *fileRoot) close() error { return unix.Close(r.fd) }

// chroot is the directory programs are chrooted to; empty for the
// guest's own root.
func (r *fileRoot) chroot() string {
	if r.dir == "/" {
		return ""
	}
	return r.dir
}

// cleanPath turns a guest path into its name relative to the root:
// relative paths start at the root too, and ".." cannot leave it.
func cleanPath(p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("%w: empty path", os.ErrInvalid)
	}
	rel := path.Clean("/" + p)[1:]
	if rel == "" {
		rel = "."
	}
	return rel, nil
}

// open opens name (cleaned) inside the root.
func (r *fileRoot) open(name string, flags int, mode uint32) (int, error) {
	how := unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Mode:    uint64(mode),
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	for {
		fd, err := unix.Openat2(r.fd, name, &how)
		// EAGAIN: a rename raced the lookup (openat2(2)); try again.
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: "/" + name, Err: err}
		}
		return fd, nil
	}
}

// stat returns what name resolves to inside the root.
func (r *fileRoot) stat(name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	fd, err := r.open(name, unix.O_PATH, 0)
	if err != nil {
		return st, err
	}
	defer unix.Close(fd)
	if err := unix.Fstat(fd, &st); err != nil {
		return st, &os.PathError{Op: "stat", Path: "/" + name, Err: err}
	}
	return st, nil
}

// isDir checks that dir (a guest path) is a directory inside the root, as
// a program's working directory; the error's Op is "chdir".
func (r *fileRoot) isDir(dir string) error {
	name, err := cleanPath(dir)
	if err != nil {
		return &os.PathError{Op: "chdir", Path: dir, Err: err}
	}
	st, err := r.stat(name)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return &os.PathError{Op: "chdir", Path: dir, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return &os.PathError{Op: "chdir", Path: dir, Err: unix.ENOTDIR}
	}
	return nil
}

// openRegular opens name for reading, refusing anything but a regular
// file: a FIFO would block, a device never end.
func (r *fileRoot) openRegular(name string) (*os.File, error) {
	fd, err := r.open(name, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "stat", Path: "/" + name, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, &os.PathError{Op: "open", Path: "/" + name, Err: errNotRegular}
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), "/"+name), nil
}

// errNotRegular is os.ErrInvalid with its reason. It is a type of its own
// rather than fmt.Errorf's because the vmm binary links this package, and
// an Errorf here would run fmt at every vmm start (some 35 µs, most of it
// first touches of fmt's code).
var errNotRegular error = notRegularError{}

type notRegularError struct{}

func (notRegularError) Error() string { return os.ErrInvalid.Error() + ": not a regular file" }
func (notRegularError) Unwrap() error { return os.ErrInvalid }

// newFile is a file being written at name: it is created under a
// temporary name in the same directory and renamed over name only when
// complete, so an abandoned put leaves nothing behind.
type newFile struct {
	*os.File
	dirfd     int
	tmp, base string
	name      string // for errors
}

func (r *fileRoot) create(name string, tag string) (*newFile, error) {
	dir, base := path.Split(name)
	if base == "" || base == "." || base == ".." {
		return nil, &os.PathError{Op: "create", Path: "/" + name, Err: os.ErrInvalid}
	}
	dir = path.Clean(dir) // "." for the root itself
	dirfd, err := r.open(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	// A single component, opened O_EXCL|O_NOFOLLOW in a directory
	// resolved inside the root: nothing here can leave it.
	tmp := "." + base + ".agent-" + tag
	fd, err := unix.Openat(dirfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		unix.Close(dirfd)
		return nil, &os.PathError{Op: "create", Path: "/" + path.Join(dir, tmp), Err: err}
	}
	return &newFile{File: os.NewFile(uintptr(fd), tmp), dirfd: dirfd, tmp: tmp, base: base, name: "/" + name}, nil
}

// commit gives the file its mode and its name.
func (f *newFile) commit(mode os.FileMode) error {
	defer unix.Close(f.dirfd)
	err := f.Chmod(mode.Perm())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// renameat replaces the last component itself, never a file a
		// symlink there points to.
		if err = unix.Renameat(f.dirfd, f.tmp, f.dirfd, f.base); err != nil {
			err = &os.PathError{Op: "rename", Path: f.name, Err: err}
		}
	}
	if err != nil {
		unix.Unlinkat(f.dirfd, f.tmp, 0)
	}
	return err
}

// abort removes the unfinished file.
func (f *newFile) abort() {
	f.Close()
	unix.Unlinkat(f.dirfd, f.tmp, 0)
	unix.Close(f.dirfd)
}
