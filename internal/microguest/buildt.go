package microguest

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/vmm-dev/vmm/boot"
)

// payloads caches compiled guests for the life of the process, so a test
// binary runs gcc once per guest however many tests boot it. It is the one
// piece of package state here, and it is what BuildT is for.
var payloads struct {
	mu     sync.Mutex
	byName map[string]*cachedPayload
}

type cachedPayload struct {
	once sync.Once
	data []byte
	err  error
}

// BuildT builds the named guest for a test and returns the path of its
// bzImage inside t.TempDir(). Compiling happens once per guest per process.
// Without gcc and binutils the test fails with the fix (`make deps`): the
// toolchain is part of the test set-up, not a property of the host.
func BuildT(t testing.TB, name string) string {
	t.Helper()
	payload, err := cachedBuild(name)
	if errors.Is(err, ErrNoToolchain) {
		t.Fatalf("cannot build micro-guest %s: %v (run `make deps` to install gcc and binutils)", name, err)
	}
	if err != nil {
		t.Fatalf("build micro-guest: %v", err)
	}
	path := filepath.Join(t.TempDir(), name+".bzImage")
	if err := os.WriteFile(path, boot.BuildBzImage(payload, boot.BzImageOptions{}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func cachedBuild(name string) ([]byte, error) {
	payloads.mu.Lock()
	if payloads.byName == nil {
		payloads.byName = make(map[string]*cachedPayload)
	}
	c := payloads.byName[name]
	if c == nil {
		c = new(cachedPayload)
		payloads.byName[name] = c
	}
	payloads.mu.Unlock()

	c.once.Do(func() {
		work, err := os.MkdirTemp("", "microguest-")
		if err != nil {
			c.err = err
			return
		}
		defer os.RemoveAll(work)
		c.data, c.err = Payload(name, work)
	})
	return c.data, c.err
}
