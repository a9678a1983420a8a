package images

import (
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"
)

// File is one regular file placed in an initramfs.
type File struct {
	Path string      // absolute or relative to the archive root, e.g. "/init"
	Mode fs.FileMode // permission bits only, e.g. 0o755
	Data []byte
}

// Console's device numbers (Documentation/admin-guide/devices.txt: 5,1 is
// /dev/console). The kernel opens it for init's stdin, stdout and stderr
// before init runs, so it must exist in the archive itself: devtmpfs is not
// mounted yet.
const (
	consoleMajor = 5
	consoleMinor = 1
)

// baseDirs are created in every initramfs: mount points for guestinit's
// mount table (the initramfs root is otherwise empty).
var baseDirs = []string{"dev", "proc", "sys", "tmp", "run"}

// BuildInitramfs writes a newc cpio archive holding files, every parent
// directory they need, the mount point directories and /dev/console. The
// archive is reproducible: the same files give the same bytes (mtime, uid,
// gid and inode numbers are fixed), so it can be cached by content.
func BuildInitramfs(w io.Writer, files []File) error {
	recs, err := initramfsRecords(files)
	if err != nil {
		return err
	}
	cw := cpio.Newc.Writer(w)
	for _, r := range recs {
		if err := cw.WriteRecord(r); err != nil {
			return fmt.Errorf("write initramfs entry %s: %w", r.Name, err)
		}
	}
	if err := cpio.WriteTrailer(cw); err != nil {
		return fmt.Errorf("write initramfs trailer: %w", err)
	}
	return nil
}

// initramfsRecords lists the records in the order the kernel needs them:
// every directory before anything inside it.
func initramfsRecords(files []File) ([]cpio.Record, error) {
	dirs := map[string]bool{}
	for _, d := range baseDirs {
		dirs[d] = true
	}
	seen := map[string]bool{"dev/console": true}
	for _, f := range files {
		name, err := archiveName(f.Path)
		if err != nil {
			return nil, err
		}
		if seen[name] || dirs[name] {
			return nil, fmt.Errorf("initramfs: %s appears twice or is also a directory", f.Path)
		}
		seen[name] = true
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	for name := range seen {
		if dirs[name] {
			return nil, fmt.Errorf("initramfs: %s is both a file and a directory", name)
		}
	}

	// Sorted full paths put "a" before "a/b", so parents come first.
	sortedDirs := make([]string, 0, len(dirs))
	for d := range dirs {
		sortedDirs = append(sortedDirs, d)
	}
	sort.Strings(sortedDirs)

	var recs []cpio.Record
	for _, d := range sortedDirs {
		recs = append(recs, cpio.Directory(d, 0o755))
	}
	recs = append(recs, cpio.CharDev("dev/console", 0o600, consoleMajor, consoleMinor))
	for _, f := range files {
		name, _ := archiveName(f.Path)
		recs = append(recs, cpio.StaticRecord(f.Data, cpio.Info{
			Name: name,
			Mode: cpio.S_IFREG | uint64(f.Mode.Perm()),
		}))
	}
	for i := range recs {
		// Distinct inode numbers, so no reader mistakes two entries
		// for hard links of one another.
		recs[i].Ino = uint64(i + 1)
		recs[i].NLink = 1
	}
	return recs, nil
}

// archiveName turns "/init" or "init" into the archive's "init", rejecting
// paths that would escape the root.
func archiveName(p string) (string, error) {
	name := strings.TrimPrefix(path.Clean("/"+p), "/")
	if name == "" || strings.ContainsRune(p, 0) || slices.Contains(strings.Split(p, "/"), "..") {
		return "", fmt.Errorf("initramfs: bad path %q: want a path inside the archive, like /init", p)
	}
	return name, nil
}
