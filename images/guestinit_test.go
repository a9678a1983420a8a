package images

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestBuildGuestinit_StaticAndRefusesOutsideAGuest(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "guestinit")
	if err := BuildGuestinit(context.Background(), bin); err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("guestinit has an ELF interpreter; it must be static: the initramfs has no libc")
		}
	}

	// Run by hand it is not PID 1, so it must refuse and touch nothing.
	var stderr bytes.Buffer
	cmd := exec.Command(bin)
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(stderr.String(), "not running as PID 1") {
		t.Fatalf("guestinit as an ordinary process: %v, stderr %q; want exit 2 and a refusal", err, stderr.String())
	}
}

func TestGuestinitInitramfs_CachedByContent(t *testing.T) {
	cache := t.TempDir()
	a, err := GuestinitInitramfs(context.Background(), cache)
	if err != nil {
		t.Fatal(err)
	}
	b, err := GuestinitInitramfs(context.Background(), cache)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	var init []byte
	for _, r := range readArchive(t, data) {
		if r.Name == "init" && r.Mode&0o777 == 0o755 {
			init = make([]byte, r.FileSize)
			r.ReadAt(init, 0)
		}
	}
	left, _ := filepath.Glob(filepath.Join(cache, "initramfs", "*.cpio"))
	if a != b || len(left) != 1 || !bytes.HasPrefix(init, []byte(elf.ELFMAG)) {
		t.Fatalf("paths %s, %s; cache %v; /init starts %q: want one cached archive with an ELF /init 0755", a, b, left, init[:min(4, len(init))])
	}
}
