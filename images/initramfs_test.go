package images

import (
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/u-root/u-root/pkg/cpio"
)

func readArchive(t *testing.T, b []byte) []cpio.Record {
	t.Helper()
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(b)))
	if err != nil {
		t.Fatalf("read archive back: %v", err)
	}
	return recs
}

func buildArchive(t *testing.T, files []File) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := BuildInitramfs(&buf, files); err != nil {
		t.Fatalf("BuildInitramfs: %v", err)
	}
	return buf.Bytes()
}

var sampleFiles = []File{
	{Path: "/init", Mode: 0o755, Data: []byte("#!init\n")},
	{Path: "/lib/modules/6.1/virtio_blk.ko", Mode: 0o644, Data: []byte("module")},
}

func TestBuildInitramfs_RoundTrip_ListsDirsConsoleAndFiles(t *testing.T) {
	recs := readArchive(t, buildArchive(t, sampleFiles))

	var got []string
	for _, r := range recs {
		got = append(got, r.Name)
	}
	want := "dev lib lib/modules lib/modules/6.1 proc run sys tmp dev/console init lib/modules/6.1/virtio_blk.ko"
	if strings.Join(got, " ") != want {
		t.Fatalf("archive order:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	byName := map[string]cpio.Record{}
	for _, r := range recs {
		byName[r.Name] = r
	}
	if c := byName["dev/console"]; c.Mode != cpio.S_IFCHR|0o600 || c.Rmajor != 5 || c.Rminor != 1 {
		t.Errorf("dev/console = mode %#o dev %d,%d, want char 0600 5,1", c.Mode, c.Rmajor, c.Rminor)
	}
	if d := byName["lib/modules"]; d.Mode != cpio.S_IFDIR|0o755 {
		t.Errorf("lib/modules mode = %#o, want dir 0755", d.Mode)
	}
	init := byName["init"]
	if init.Mode != cpio.S_IFREG|0o755 {
		t.Errorf("init mode = %#o, want regular 0755", init.Mode)
	}
	data := make([]byte, init.FileSize)
	if _, err := init.ReadAt(data, 0); err != nil || string(data) != "#!init\n" {
		t.Errorf("init content = %q, %v; want %q", data, err, "#!init\n")
	}
}

func TestBuildInitramfs_SameFiles_SameBytes(t *testing.T) {
	a := buildArchive(t, sampleFiles)
	b := buildArchive(t, sampleFiles)
	if !bytes.Equal(a, b) {
		t.Fatal("two builds of the same files differ; the cache key would never hit")
	}
}

// GNU cpio is the reader people will use to look inside one by hand.
func TestBuildInitramfs_GNUCpioLists(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Fatal("cpio not found: run `make deps` (installs Debian's cpio package)")
	}
	cmd := exec.Command("cpio", "-it", "--quiet")
	cmd.Stdin = bytes.NewReader(buildArchive(t, sampleFiles))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -t: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "dev/console\ninit\n") {
		t.Fatalf("cpio -t output lacks dev/console and init:\n%s", out)
	}
}

func TestBuildInitramfs_BadFiles_Rejected(t *testing.T) {
	tests := []struct {
		name  string
		files []File
	}{
		{"parent escape", []File{{Path: "../etc/passwd"}}},
		{"root", []File{{Path: "/"}}},
		{"empty", []File{{Path: ""}}},
		{"NUL in name", []File{{Path: "/in\x00it"}}},
		{"duplicate", []File{{Path: "/init"}, {Path: "init"}}},
		{"file is also a dir", []File{{Path: "/a"}, {Path: "/a/b"}}},
		{"file over a mount point", []File{{Path: "/proc"}}},
		{"file over console", []File{{Path: "/dev/console"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := BuildInitramfs(&buf, tt.files); err == nil {
				t.Fatalf("BuildInitramfs(%v) succeeded, want an error", tt.files)
			}
		})
	}
}

func FuzzBuildInitramfs(f *testing.F) {
	f.Add("/init", []byte("x"))
	f.Add("a/b/c", []byte{})
	f.Add("../x", []byte("y"))
	f.Fuzz(func(t *testing.T, path string, data []byte) {
		var buf bytes.Buffer
		if err := BuildInitramfs(&buf, []File{{Path: path, Mode: 0o644, Data: data}}); err != nil {
			return
		}
		recs := readArchive(t, buf.Bytes())
		last := recs[len(recs)-1]
		got := make([]byte, last.FileSize)
		if _, err := last.ReadAt(got, 0); len(got) > 0 && err != nil {
			t.Fatalf("read %s back: %v", last.Name, err)
		}
		if !bytes.Equal(got, data) || slices.Contains(strings.Split(last.Name, "/"), "..") {
			t.Fatalf("path %q: read back %q with %q, want %q", path, last.Name, got, data)
		}
	})
}
