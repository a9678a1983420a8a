package main

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/vmm-dev/vmm/vmm"
)

// The image commands against an in-process registry on loopback: pull
// prints the digest, images lists it, rmi removes it, and errors name the
// problem.
func TestImageCommands(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	ref := fmt.Sprintf("%s/test/app:1", u.Host)
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()

	code, out, errOut := run("pull", ref)
	if code != 0 || !strings.Contains(out, digest.String()) {
		t.Fatalf("pull: status %d, stdout %q, stderr %q; want 0 and the digest %s", code, out, errOut, digest)
	}
	code, out, _ = run("images")
	if code != 0 || !strings.Contains(out, "test/app:1") || !strings.Contains(out, digest.String()[:19]) {
		t.Errorf("images: status %d, stdout:\n%s", code, out)
	}
	if code, _, errOut := run("pull", u.Host+"/test/app:nope"); code != vmm.StatusSetupError || !strings.Contains(errOut, "not found") {
		t.Errorf("pull of an unknown tag: status %d, stderr %q", code, errOut)
	}
	if code, _, errOut := run("pull", "UPPER/case"); code != vmm.StatusUsage || !strings.Contains(errOut, "vmm pull:") {
		t.Errorf("pull of a bad reference: status %d, stderr %q", code, errOut)
	}
	if code, out, errOut := run("rmi", ref); code != 0 || !strings.Contains(out, "removed") {
		t.Errorf("rmi: status %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, out, _ := run("images"); strings.Contains(out, "test/app") {
		t.Errorf("images after rmi still lists it:\n%s", out)
	}
	if code, _, _ := run("rmi", ref); code == 0 {
		t.Error("rmi of an image not in the store succeeded")
	}
}

func run(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := dispatch(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}
