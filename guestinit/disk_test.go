package guestinit

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmm-dev/vmm/guestinit/protocol"
)

func TestDiskFiles_HashesAndWrites(t *testing.T) {
	root := t.TempDir()
	in := []byte("known contents\n")
	if err := os.WriteFile(filepath.Join(root, "in.bin"), in, 0o644); err != nil {
		t.Fatal(err)
	}
	r := diskFiles(root, protocol.DiskCheck{Device: "/dev/vda", Hash: "/in.bin", Write: "out.txt", Data: []byte("hello")})
	sum := sha256.Sum256(in)
	want := "VMM-CHECK disk dev=/dev/vda hash=/in.bin sha256=" + hex.EncodeToString(sum[:]) + " wrote=out.txt bytes=5 ok"
	if r.String() != want {
		t.Errorf("diskFiles = %q, want %q", r, want)
	}
	if got, err := os.ReadFile(filepath.Join(root, "out.txt")); err != nil || string(got) != "hello" {
		t.Errorf("out.txt = %q, %v; want hello", got, err)
	}
}

func TestDiskFiles_PathsStayInsideRoot(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "mnt")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	r := diskFiles(root, protocol.DiskCheck{Write: "../../escape", Data: []byte("x")})
	if !r.OK() {
		t.Fatal(r)
	}
	if _, err := os.Stat(filepath.Join(root, "escape")); err != nil {
		t.Errorf("write of ../../escape did not land inside root: %v", err)
	}
	if _, err := os.Stat(filepath.Join(parent, "escape")); err == nil {
		t.Error("write of ../../escape climbed out of root")
	}
}

func TestDiskFiles_MissingFile_Fails(t *testing.T) {
	r := diskFiles(t.TempDir(), protocol.DiskCheck{Hash: "/nope"})
	if r.OK() || r.Name != protocol.CheckDisk || !strings.Contains(r.Err, "hash /nope") {
		t.Errorf("diskFiles = %q, want a disk failure naming the file", r)
	}
}
