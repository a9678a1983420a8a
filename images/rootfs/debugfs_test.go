package rootfs

import (
	"archive/tar"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Reading disks back with e2fsprogs: debugfs reads an image without
// mounting it, e2fsck judges it.

func needE2fsprogs(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"debugfs", "e2fsck"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (e2fsprogs)", tool)
		}
	}
}

func debugfs(t *testing.T, img, cmd string) string {
	t.Helper()
	out, err := exec.Command("debugfs", "-R", cmd, img).Output()
	if err != nil {
		t.Fatalf("debugfs -R %q: %v", cmd, err)
	}
	return string(out)
}

func e2fsckClean(t *testing.T, img string) {
	t.Helper()
	if out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn %s: %v\n%s", img, err, out)
	}
}

// diskEntry is one line of debugfs "ls -p".
type diskEntry struct {
	ino      string
	mode     int64 // with the S_IFMT bits
	uid, gid int
	size     int64
}

// listDisk walks the image with "ls -p" and returns every entry by path,
// "." being the root.
func listDisk(t *testing.T, img string) map[string]diskEntry {
	t.Helper()
	all := make(map[string]diskEntry)
	var walk func(dir string)
	walk = func(dir string) {
		for _, line := range strings.Split(debugfs(t, img, "ls -p "+strconv.Quote("/"+dir)), "\n") {
			f := strings.Split(line, "/") // "", ino, mode, uid, gid, name, size, ""
			if len(f) != 8 || f[5] == "" || f[5] == ".." || f[5] == "." && dir != "" {
				continue
			}
			var e diskEntry
			e.ino = f[1]
			e.mode, _ = strconv.ParseInt(f[2], 8, 64)
			e.uid, _ = strconv.Atoi(f[3])
			e.gid, _ = strconv.Atoi(f[4])
			e.size, _ = strconv.ParseInt(f[6], 10, 64)
			p := path.Join(dir, f[5])
			all[p] = e
			if e.mode&0o170000 == 0o040000 && p != "." {
				walk(p)
			}
		}
	}
	walk("")
	return all
}

// catDisk returns a file's data; debugfs prints an inline file's whole
// inline area, so it is cut to the inode's size, as the kernel reads it.
func catDisk(t *testing.T, img, p string, size int64) string {
	out := debugfs(t, img, "cat "+strconv.Quote("/"+p))
	if int64(len(out)) > size {
		out = out[:size]
	}
	return out
}

var (
	fastLinkRE = regexp.MustCompile(`Fast link dest: "(.*)"`)
	deviceRE   = regexp.MustCompile(`Device major/minor number: ([0-9a-f]+):([0-9a-f]+)`)
	mtimeRE    = regexp.MustCompile(`\smtime: 0x([0-9a-f]+):([0-9a-f]+)`)
)

func linkDisk(t *testing.T, img, p string, size int64) string {
	if m := fastLinkRE.FindStringSubmatch(debugfs(t, img, "stat "+strconv.Quote("/"+p))); m != nil {
		return m[1]
	}
	return catDisk(t, img, p, size)
}

var typeBits = map[byte]int64{
	tar.TypeReg: 0o100000, tar.TypeDir: 0o040000, tar.TypeSymlink: 0o120000,
	tar.TypeChar: 0o020000, tar.TypeBlock: 0o060000, tar.TypeFifo: 0o010000,
}

// checkDisk compares an ext4 image with the flattened tar it was built
// from: the same names (plus lost+found), types, modes, owners, mtimes,
// data, symlink targets, device numbers, xattrs and hardlinks.
func checkDisk(t *testing.T, img string, flat []byte) {
	t.Helper()
	tree, err := checkStream(flat)
	if err != nil {
		t.Fatal(err)
	}
	disk := listDisk(t, img)
	for name := range disk {
		if _, ok := tree[name]; !ok && name != "lost+found" {
			t.Errorf("%s is on the disk but not in the tree", name)
		}
	}
	for name, want := range tree {
		d, ok := disk[name]
		if !ok {
			t.Errorf("%s is missing from the disk", name)
			continue
		}
		if want.Typeflag == tar.TypeLink {
			if tgt := disk[want.Linkname]; tgt.ino != d.ino {
				t.Errorf("%s: inode %s, want %s's inode %s", name, d.ino, want.Linkname, tgt.ino)
			}
			continue
		}
		if d.mode != typeBits[want.Typeflag]|want.Mode || d.uid != want.Uid || d.gid != want.Gid {
			t.Errorf("%s: mode %o uid %d gid %d, want %o %d %d", name, d.mode, d.uid, d.gid, typeBits[want.Typeflag]|want.Mode, want.Uid, want.Gid)
		}
		checkInode(t, img, name, want, d)
	}
}

func checkInode(t *testing.T, img, name string, want got, d diskEntry) {
	stat := debugfs(t, img, "stat "+strconv.Quote("/"+name))
	if m := mtimeRE.FindStringSubmatch(stat); m == nil || m[1] != fmt.Sprintf("%08x", want.ModTime.Unix()) || m[2] != fmt.Sprintf("%08x", want.ModTime.Nanosecond()<<2) {
		t.Errorf("%s: mtime %q, want %v", name, m, want.ModTime)
	}
	switch want.Typeflag {
	case tar.TypeReg:
		if d.size != want.Size || catDisk(t, img, name, d.size) != want.body {
			t.Errorf("%s: %d bytes, data differs from the tree's %d", name, d.size, want.Size)
		}
	case tar.TypeSymlink:
		if got := linkDisk(t, img, name, d.size); got != want.Linkname {
			t.Errorf("%s: symlink to %q, want %q", name, got, want.Linkname)
		}
	case tar.TypeChar, tar.TypeBlock:
		m := deviceRE.FindStringSubmatch(stat)
		if m == nil || m[1] != fmt.Sprintf("%02x", want.Devmajor) || m[2] != fmt.Sprintf("%02x", want.Devminor) {
			t.Errorf("%s: device %q, want %d:%d", name, m, want.Devmajor, want.Devminor)
		}
	}
	for k, v := range want.PAXRecords {
		if x, ok := strings.CutPrefix(k, xattrPAXPrefix); ok {
			if got := xattrDisk(t, img, name, x); got != v {
				t.Errorf("%s: xattr %s = %q, want %q", name, x, got, v)
			}
		}
	}
}

// xattrDisk returns an xattr's raw value, "" when it is missing.
func xattrDisk(t *testing.T, img, p, name string) string {
	out := filepath.Join(t.TempDir(), "xattr")
	debugfs(t, img, fmt.Sprintf("ea_get -f %s %s %s", out, strconv.Quote("/"+p), name))
	b, _ := os.ReadFile(out)
	return string(b)
}
