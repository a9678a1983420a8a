package container

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmm-dev/vmm/vmm"
)

// fakeTool writes a vmm-images stand-in that saves its request and
// prints reply.
func fakeTool(t *testing.T, reply string, status int) (tool, request string) {
	dir := t.TempDir()
	tool, request = filepath.Join(dir, "vmm-images"), filepath.Join(dir, "request.json")
	script := "#!/bin/sh\n[ \"$1\" = prepare ] || exit 9\ncat > " + request + "\necho progress >&2\nprintf '%s\\n' '" + reply + "'\nexit " +
		string(rune('0'+status)) + "\n"
	if err := os.WriteFile(tool, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return tool, request
}

// Prepare hands the spec, the machine's kernel and initrd and the cache
// to vmm-images prepare, passes its stderr on as progress, and returns its
// Prepared; the machine's Config puts the image's disk first, read-only.
func TestPrepare_AsksTheImageTool(t *testing.T) {
	tool, request := fakeTool(t, `{"Prepared":{"Ref":"docker.io/library/app:1","Digest":"sha256:0123456789abcdef0123","Rootfs":"/c/rootfs.ext4","Kernel":"/k","Initrd":"/c/run/initrd-1.cpio","RunConfig":{"Version":1,"Args":["x"]}}}`, 0)
	var progress strings.Builder
	spec := Spec{Image: "app:1", Args: []string{"x"}}
	p, err := Prepare(context.Background(), spec, Machine{Kernel: "/k", Initrd: "/i"}, Options{Tool: tool, CacheDir: "/c", Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	var req PrepareRequest
	b, _ := os.ReadFile(request)
	if err := json.Unmarshal(b, &req); err != nil || req.Spec.Image != "app:1" || req.Kernel != "/k" || req.Initrd != "/i" || req.CacheDir != "/c" {
		t.Errorf("request %s: %+v, %v", b, req, err)
	}
	if progress.String() != "progress\n" {
		t.Errorf("progress %q", progress.String())
	}
	if p.Ref != "docker.io/library/app:1" || p.Rootfs != "/c/rootfs.ext4" || len(p.RunConfig.Args) != 1 || ShortDigest(p.Digest) != "sha256:0123456789ab" {
		t.Errorf("prepared %+v", p)
	}
	cfg := p.Config(Machine{CPUs: 2, Disks: []vmm.Disk{{Path: "/data"}}})
	if d := cfg.Disks; len(d) != 2 || d[0].Path != p.Rootfs || !d[0].ReadOnly || d[1].Path != "/data" || d[1].ReadOnly {
		t.Errorf("disks %+v, want the rootfs read-only first", d)
	}
	if cfg.CPUs != 2 || cfg.MemoryBytes != DefaultMemory || cfg.Cmdline != Cmdline || cfg.Initrd != p.Initrd || !cfg.RNG {
		t.Errorf("config %+v", cfg)
	}
}

// The image side's error is the error, word for word; a tool that dies
// without a reply, or is missing, is named.
func TestPrepare_Errors(t *testing.T) {
	tool, _ := fakeTool(t, `{"Error":"image app:1 not found: check the name"}`, 1)
	if _, err := Prepare(context.Background(), Spec{Image: "app:1"}, Machine{}, Options{Tool: tool}); err == nil || err.Error() != "image app:1 not found: check the name" {
		t.Errorf("error reply: %v", err)
	}
	tool, _ = fakeTool(t, `not json`, 3)
	if _, err := Prepare(context.Background(), Spec{Image: "app:1"}, Machine{}, Options{Tool: tool}); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("garbage reply: %v", err)
	}
	t.Setenv(ToolEnv, "")
	if _, err := FindTool(); err == nil || !strings.Contains(err.Error(), "make build") {
		t.Errorf("FindTool beside a test binary: %v", err)
	}
	t.Setenv(ToolEnv, "/opt/x/vmm-images")
	if p, err := FindTool(); err != nil || p != "/opt/x/vmm-images" {
		t.Errorf("FindTool with %s set: %q, %v", ToolEnv, p, err)
	}
}
