package busybox

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's accounts: root, an unprivileged app user for workloads that
// want one, and nobody.
const (
	passwd = "root:x:0:0:root:/root:/bin/sh\n" +
		"app:x:1000:1000:app:/home/app:/bin/sh\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
	group = "root:x:0:\n" +
		"app:x:1000:\n" +
		"nogroup:x:65534:\n"
	appID = 1000
)

// entry is one member of the layer's tar.
type entry struct {
	hdr  tar.Header
	body []byte
}

func dirEntry(name string, mode int64, id int) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: id, Gid: id}}
}

func fileEntry(name string, mode int64, body []byte) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(body))}, body: body}
}

func symlinkEntry(name, target string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}

// rootEntries is the image's file tree: busybox, its applets as relative
// symlinks next to it, the account files and the usual directories.
// /etc/hostname is left out: the VM's init writes the hostname.
func rootEntries(busybox []byte, applets []string) []entry {
	es := []entry{
		dirEntry("bin", 0o755, 0),
		fileEntry(binaryPath, 0o755, busybox),
		dirEntry("etc", 0o755, 0),
		fileEntry("etc/passwd", 0o644, []byte(passwd)),
		fileEntry("etc/group", 0o644, []byte(group)),
		dirEntry("home", 0o755, 0),
		dirEntry("home/app", 0o755, appID),
		dirEntry("root", 0o700, 0),
		dirEntry("tmp", 0o1777, 0),
	}
	for _, a := range applets {
		es = append(es, symlinkEntry(path.Join("bin", a), path.Base(binaryPath)))
	}
	// By name, which also puts every directory before what it holds.
	slices.SortFunc(es, func(a, b entry) int {
		return strings.Compare(strings.TrimSuffix(a.hdr.Name, "/"), strings.TrimSuffix(b.hdr.Name, "/"))
	})
	return es
}

// writeTar writes es as a reproducible tar: one timestamp, no user or
// group names, USTAR headers.
func writeTar(w io.Writer, es []entry) error {
	tw := tar.NewWriter(w)
	for _, e := range es {
		h := e.hdr
		h.ModTime = epoch()
		h.Format = tar.FormatUSTAR
		if err := tw.WriteHeader(&h); err != nil {
			return fmt.Errorf("layer entry %s: %w", h.Name, err)
		}
		if _, err := tw.Write(e.body); err != nil {
			return fmt.Errorf("layer entry %s: %w", h.Name, err)
		}
	}
	return tw.Close()
}

// newLayer builds the image's one layer in memory, gzipped (level 9 would
// save under 0.1% for twice the time): the same input gives the same
// digest.
func newLayer(busybox []byte, applets []string) (v1.Layer, error) {
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	if err := writeTar(zw, rootEntries(busybox, applets)); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	blob := gz.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(blob)), nil
	}, tarball.WithMediaType(types.OCILayer))
}
