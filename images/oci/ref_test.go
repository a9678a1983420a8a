package oci

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParseRef(t *testing.T) {
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in        string
		transport Transport
		want      string // String()
		path, tag string
	}{
		{in: "alpine:3.20", want: "index.docker.io/library/alpine:3.20"},
		{in: "alpine", want: "index.docker.io/library/alpine:latest"},
		{in: "docker.io/library/alpine:3.20", want: "index.docker.io/library/alpine:3.20"},
		{in: "user/app:1", want: "index.docker.io/user/app:1"},
		{in: "ghcr.io/org/app@" + testDigest, want: "ghcr.io/org/app@" + testDigest},
		{in: "ghcr.io/org/app:1.0@" + testDigest, want: "ghcr.io/org/app@" + testDigest},
		{in: "localhost:5000/x/y:z", want: "localhost:5000/x/y:z"},
		{in: "127.0.0.1:5000/test/img:v1", want: "127.0.0.1:5000/test/img:v1"},
		{in: "oci-layout:/srv/img", transport: FromLayout, want: "oci-layout:/srv/img", path: "/srv/img"},
		{in: "oci-layout:/srv/img:v1", transport: FromLayout, want: "oci-layout:/srv/img:v1", path: "/srv/img", tag: "v1"},
		{in: "oci-layout:/srv/img/:v1", transport: FromLayout, want: "oci-layout:/srv/img:v1", path: "/srv/img", tag: "v1"},
		{in: "oci-layout:/srv/a:b/img", transport: FromLayout, want: "oci-layout:/srv/a:b/img", path: "/srv/a:b/img"},
		{in: "oci-layout:/srv/a:b/", transport: FromLayout, want: "oci-layout:/srv/a:b/", path: "/srv/a:b"},
		{in: "oci-layout:rel/dir:v1", transport: FromLayout, want: "oci-layout:" + filepath.Join(cwd, "rel/dir") + ":v1", path: filepath.Join(cwd, "rel/dir"), tag: "v1"},
		{in: "docker-archive:/tmp/img.tar", transport: FromArchive, want: "docker-archive:/tmp/img.tar", path: "/tmp/img.tar"},
		{in: "docker-archive:/tmp/a:b.tar", transport: FromArchive, want: "docker-archive:/tmp/a:b.tar", path: "/tmp/a:b.tar"},
		{in: "docker-archive:img.tar", transport: FromArchive, want: "docker-archive:" + filepath.Join(cwd, "img.tar"), path: filepath.Join(cwd, "img.tar")},
	} {
		r, err := ParseRef(tc.in)
		if err != nil {
			t.Errorf("ParseRef(%q): %v", tc.in, err)
			continue
		}
		if r.Transport != tc.transport || r.String() != tc.want || r.Path != tc.path || r.Tag != tc.tag {
			t.Errorf("ParseRef(%q) = {%v %q path %q tag %q}, want {%v %q path %q tag %q}",
				tc.in, r.Transport, r, r.Path, r.Tag, tc.transport, tc.want, tc.path, tc.tag)
		}
	}
}

func TestParseRef_Bad(t *testing.T) {
	for _, tc := range []struct{ in, why string }{
		{"", "a repository name must be specified"},
		{"Alpine:3.20", "repository can only contain"},
		{"alpine:", "tag"},
		{"alpine@sha256:abc", "digest"},
		{"a b", "repository can only contain"},
		{"oci-layout:", "no layout directory"},
		{"oci-layout::v1", "no layout directory"},
		{"oci-layout:/srv/img:", "empty tag"},
		{"docker-archive:", "no archive file"},
	} {
		_, err := ParseRef(tc.in)
		if !errors.Is(err, ErrBadRef) {
			t.Errorf("ParseRef(%q): %v, want ErrBadRef", tc.in, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, tc.why) || !strings.HasSuffix(msg, "use "+refForms) {
			t.Errorf("ParseRef(%q): %q should say %q and list the accepted forms", tc.in, msg, tc.why)
		}
	}
}

// FuzzParseRef checks that ParseRef never panics, fails only with
// ErrBadRef, and that the normalized form parses back to itself: the store
// keys its index by that form.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"alpine:3.20", "ghcr.io/org/app@" + testDigest, "oci-layout:/srv/a:b/", "docker-archive:x.tar"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			if !errors.Is(err, ErrBadRef) {
				t.Fatalf("ParseRef(%q): %v is not ErrBadRef", s, err)
			}
			return
		}
		r2, err := ParseRef(r.String())
		if err != nil {
			t.Fatalf("ParseRef(%q) = %q, which does not parse: %v", s, r, err)
		}
		if r2.String() != r.String() || r2.Transport != r.Transport || r2.Path != r.Path || r2.Tag != r.Tag {
			t.Fatalf("ParseRef(%q) = %q, which parses to %q", s, r, r2)
		}
	})
}
