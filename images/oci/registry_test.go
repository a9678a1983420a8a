package oci

import (
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// testRegistry is go-containerregistry's in-process registry on loopback
// (plain http: gcr treats 127.0.0.1 as insecure), recording the requests
// it serves and optionally tampering with them.
type testRegistry struct {
	srv  *httptest.Server
	host string

	mu       sync.Mutex
	requests []string                                          // "GET /v2/..."
	flip     string                                            // path suffix whose response body gets one byte flipped
	hook     func(w http.ResponseWriter, r *http.Request) bool // runs first; false: it answered
}

func newTestRegistry(t *testing.T) *testRegistry {
	t.Helper()
	tr := &testRegistry{}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	tr.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr.mu.Lock()
		tr.requests = append(tr.requests, r.Method+" "+r.URL.Path)
		flip, hook := tr.flip, tr.hook
		tr.mu.Unlock()
		if hook != nil && !hook(w, r) {
			return
		}
		if flip != "" && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, flip) {
			w = &flipWriter{ResponseWriter: w}
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(tr.srv.Close)
	tr.host = strings.TrimPrefix(tr.srv.URL, "http://")
	return tr
}

// push uploads img as repoTag ("test/img:v1") and returns the reference a
// user would type, then forgets the push's requests.
func (tr *testRegistry) push(t *testing.T, repoTag string, img v1.Image) Ref {
	t.Helper()
	ref := tr.host + "/" + repoTag
	n, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(n, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	tr.reset()
	return mustParseRef(t, ref)
}

func (tr *testRegistry) pushIndex(t *testing.T, repoTag string, idx v1.ImageIndex) Ref {
	t.Helper()
	ref := tr.host + "/" + repoTag
	n, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(n, idx); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	tr.reset()
	return mustParseRef(t, ref)
}

func (tr *testRegistry) reset() {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.requests = nil
}

// count returns how many requests had method and a path containing part.
func (tr *testRegistry) count(method, part string) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, r := range tr.requests {
		if strings.HasPrefix(r, method+" ") && strings.Contains(r, part) {
			n++
		}
	}
	return n
}

func (tr *testRegistry) all() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]string(nil), tr.requests...)
}

func (tr *testRegistry) setFlip(suffix string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.flip = suffix
}

func (tr *testRegistry) setHook(h func(w http.ResponseWriter, r *http.Request) bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.hook = h
}

// flipWriter inverts the first byte of a response body, keeping its length.
type flipWriter struct {
	http.ResponseWriter
	done bool
}

func (f *flipWriter) Write(p []byte) (int, error) {
	if f.done || len(p) == 0 {
		return f.ResponseWriter.Write(p)
	}
	f.done = true
	q := append([]byte(nil), p...)
	q[0] ^= 0xff
	return f.ResponseWriter.Write(q)
}

// anonymous keeps tests away from the developer's docker credentials.
func anonymous() Options {
	return Options{Keychain: authn.NewMultiKeychain()}
}

func mustParseRef(t *testing.T, s string) Ref {
	t.Helper()
	r, err := ParseRef(s)
	if err != nil {
		t.Fatalf("ParseRef(%q): %v", s, err)
	}
	return r
}

func openStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "oci"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func randomImage(t *testing.T, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(2048, layers)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// storeFiles lists every path under the store with its size, to show that
// a failed pull changed nothing.
func storeFiles(t *testing.T, s *Store) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(s.Dir(), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.Dir(), p)
		if d.IsDir() {
			out = append(out, rel+"/")
		} else {
			out = append(out, fmt.Sprintf("%s %d", rel, fi.Size()))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func digestOf(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// uncompressed returns a layer's tar bytes.
func uncompressed(t *testing.T, l v1.Layer) []byte {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// writeDockerConfig writes a docker config.json holding a login for host.
func writeDockerConfig(t *testing.T, dir, host, user, pass string) {
	t.Helper()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	cfg := fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, host, auth)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}
