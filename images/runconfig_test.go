package images

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/vmm-dev/vmm/guestinit/protocol"
)

// The run initramfs is the base archive byte for byte, then a second
// archive whose config decodes back to what went in.
func TestWriteRunInitramfs(t *testing.T) {
	var base bytes.Buffer
	if err := BuildInitramfs(&base, []File{{Path: "/init", Mode: 0o755, Data: []byte("init")}}); err != nil {
		t.Fatal(err)
	}
	basePath := filepath.Join(t.TempDir(), "base.cpio")
	if err := os.WriteFile(basePath, base.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := protocol.RunConfig{Version: protocol.RunConfigVersion, Args: []string{"echo", "hi"}, Hostname: "box"}
	var out bytes.Buffer
	if err := WriteRunInitramfs(&out, basePath, cfg); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(out.Bytes(), base.Bytes()) {
		t.Fatal("the run initramfs does not start with the base archive")
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(out.Bytes()[base.Len():])))
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	for _, r := range recs {
		if "/"+r.Name == protocol.RunConfigPath {
			got, err = io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	back, err := protocol.DecodeRunConfig(got)
	if err != nil {
		t.Fatalf("decode %s from the appended archive: %v (records %v)", protocol.RunConfigPath, err, recs)
	}
	if back.Hostname != "box" || len(back.Args) != 2 {
		t.Errorf("config read back as %+v", back)
	}

	if err := WriteRunInitramfs(io.Discard, filepath.Join(t.TempDir(), "missing"), cfg); err == nil {
		t.Error("a missing base initramfs was accepted")
	}
	if err := WriteRunInitramfs(io.Discard, basePath, protocol.RunConfig{Version: 99}); err == nil {
		t.Error("an invalid config was accepted")
	}
}
