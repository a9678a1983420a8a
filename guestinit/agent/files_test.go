package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPutGet_10MiB_BothWays(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := serve(t, ServeOptions{Root: root})
	data := randomBytes(t, 10<<20+123)
	want := sha256.Sum256(data)
	ctx := testCtx(t)

	start := time.Now()
	if err := s.client.PutFile(ctx, "/data/blob", bytes.NewReader(data), 0o640); err != nil {
		t.Fatalf("PutFile: %v", err)
	}
	put := time.Since(start)
	onDisk, err := os.ReadFile(filepath.Join(root, "data/blob"))
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(onDisk) != want {
		t.Fatalf("the guest's file: %d bytes, sha256 differs from the %d put", len(onDisk), len(data))
	}
	if fi, _ := os.Stat(filepath.Join(root, "data/blob")); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}

	start = time.Now()
	h := sha256.New()
	if err := s.client.GetFile(ctx, "data/blob", h); err != nil {
		t.Fatalf("GetFile: %v", err)
	}
	if [32]byte(h.Sum(nil)) != want {
		t.Fatal("GetFile's bytes: sha256 differs from the file's")
	}
	t.Logf("10 MiB: put %v, get %v", put.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if entries, _ := os.ReadDir(filepath.Join(root, "data")); len(entries) != 1 {
		t.Errorf("the directory holds %d entries, want only the file: a temporary file was left", len(entries))
	}
}

func TestPut_ReplacesAndGetErrors(t *testing.T) {
	root := t.TempDir()
	s := serve(t, ServeOptions{Root: root})
	ctx := testCtx(t)
	for _, content := range []string{"first", "second, longer"} {
		if err := s.client.PutFile(ctx, "/f", strings.NewReader(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(root, "f")); string(b) != "second, longer" {
		t.Errorf("after two puts: %q", b)
	}
	if err := s.client.PutFile(ctx, "/empty", strings.NewReader(""), 0o600); err != nil {
		t.Fatalf("empty put: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(root, "empty")); err != nil || fi.Size() != 0 {
		t.Errorf("empty file: %v, %v", fi, err)
	}
	if err := unix.Mkfifo(filepath.Join(root, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		err  error
		do   func() error
	}{
		{"get missing", fs.ErrNotExist, func() error { return s.client.GetFile(ctx, "/missing", io.Discard) }},
		{"get a directory", fs.ErrInvalid, func() error { return s.client.GetFile(ctx, "/", io.Discard) }},
		{"get a FIFO", fs.ErrInvalid, func() error { return s.client.GetFile(ctx, "/fifo", io.Discard) }},
		{"get empty path", fs.ErrInvalid, func() error { return s.client.GetFile(ctx, "", io.Discard) }},
		{"put in a missing dir", fs.ErrNotExist, func() error { return s.client.PutFile(ctx, "/no/dir/f", strings.NewReader("x"), 0o644) }},
		{"put over the root", fs.ErrInvalid, func() error { return s.client.PutFile(ctx, "/", strings.NewReader("x"), 0o644) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			var re *RemoteError
			if !errors.As(err, &re) || !errors.Is(err, tt.err) {
				t.Errorf("err = %v, want a RemoteError matching %v", err, tt.err)
			}
		})
	}
}

// Paths stay inside Root whatever they say: ".." stops at the root,
// absolute paths start there, and symlinks, absolute or relative, resolve
// inside it as they would for a program chrooted there.
func TestPaths_ConfinedToRoot(t *testing.T) {
	base := t.TempDir()
	root, outside := filepath.Join(base, "root"), filepath.Join(base, "outside")
	for _, d := range []string{root, outside, filepath.Join(root, "etc")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("host secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/hosts"), []byte("guest hosts"), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"up":       "../../..",     // relative, past the root
		"abs":      outside,        // absolute: the same path inside the root
		"etc-abs":  "/etc",         // absolute, inside the root
		"hostfile": secret,         // absolute, to a file outside
		"dotdot":   "../outside",   // relative, to a sibling of the root
		"loop":     "loop",         // a loop
		"via-up":   "up/etc/hosts", // through another link
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	s := serve(t, ServeOptions{Root: root})
	ctx := testCtx(t)
	get := func(p string) (string, error) {
		var b bytes.Buffer
		err := s.client.GetFile(ctx, p, &b)
		return b.String(), err
	}
	for _, tt := range []struct {
		path, want string
	}{
		{"../../etc/hosts", "guest hosts"},
		{"/../etc/hosts", "guest hosts"},
		{"up/etc/hosts", "guest hosts"},
		{"etc-abs/hosts", "guest hosts"},
		{"via-up", "guest hosts"},
	} {
		if got, err := get(tt.path); err != nil || got != tt.want {
			t.Errorf("get %s = %q, %v; want %q", tt.path, got, err, tt.want)
		}
	}
	for _, p := range []string{"hostfile", "abs/secret", "dotdot/secret", "../outside/secret", "loop"} {
		if got, err := get(p); err == nil {
			t.Errorf("get %s = %q: read outside the root", p, got)
		}
	}
	// Writes: each lands inside the root or fails; the host's file and
	// directory never change.
	for _, p := range []string{"../x", "/../../y", "up/z", "abs/secret", "hostfile", "dotdot/secret", "dotdot/new"} {
		err := s.client.PutFile(ctx, p, strings.NewReader("from the host"), 0o644)
		t.Logf("put %s: %v", p, err)
	}
	for _, name := range []string{"x", "y", "z"} {
		if b, err := os.ReadFile(filepath.Join(root, name)); err != nil || string(b) != "from the host" {
			t.Errorf("%s inside the root: %q, %v", name, b, err)
		}
	}
	if b, _ := os.ReadFile(secret); string(b) != "host secret" {
		t.Errorf("the file outside the root changed: %q", b)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 1 {
		t.Errorf("the directory outside the root holds %d entries, want 1", len(entries))
	}
	if entries, _ := os.ReadDir(base); len(entries) != 2 {
		t.Errorf("the root's parent holds %d entries, want 2", len(entries))
	}
}

// A put abandoned mid-way leaves neither the file nor its temporary.
func TestPut_Abandoned_LeavesNothing(t *testing.T) {
	root := t.TempDir()
	s := serve(t, ServeOptions{Root: root})
	ctx, cancel := context.WithCancel(testCtx(t))
	r, w := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- s.client.PutFile(ctx, "/half", r, 0o644) }()
	if _, err := w.Write(make([]byte, 100<<10)); err != nil {
		t.Fatal(err)
	}
	// Some of it has reached the guest: the temporary file exists.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if entries, _ := os.ReadDir(root); len(entries) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no temporary file appeared")
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("PutFile = %v, want context.Canceled", err)
	}
	w.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		entries, _ := os.ReadDir(root)
		if len(entries) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("left in the root: %v", entries)
		}
	}
	if err := s.client.PutFile(testCtx(t), "/whole", strings.NewReader("ok"), 0o644); err != nil {
		t.Fatalf("the next put: %v", err)
	}
}
