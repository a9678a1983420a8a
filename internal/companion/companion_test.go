package companion

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFind_EnvWins(t *testing.T) {
	t.Setenv("COMPANION_TEST", "/opt/x/tool")
	if p, err := Find("tool", "COMPANION_TEST"); err != nil || p != "/opt/x/tool" {
		t.Errorf("Find with the variable set: %q, %v", p, err)
	}
}

func TestFind_NotBesideTestBinary_NamesTheFix(t *testing.T) {
	t.Setenv("COMPANION_TEST", "")
	_, err := Find("no-such-companion", "COMPANION_TEST")
	if err == nil || !strings.Contains(err.Error(), "make build") || !strings.Contains(err.Error(), "set COMPANION_TEST to its path") {
		t.Errorf("Find of a missing program: %v", err)
	}
}

func TestBeside(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "vmm")
	if err := os.WriteFile(filepath.Join(dir, "vmm-lab"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "vmm-images"), 0o755); err != nil {
		t.Fatal(err)
	}
	if p, err := Beside(exe, "vmm-lab", "VMM_LAB"); err != nil || p != filepath.Join(dir, "vmm-lab") {
		t.Errorf("Beside with the file there: %q, %v", p, err)
	}
	want := "vmm-images is not installed beside " + exe + ": `make build` puts it in bin/ with vmm, or set VMM_IMAGES to its path"
	if _, err := Beside(exe, "vmm-images", "VMM_IMAGES"); err == nil || err.Error() != want {
		t.Errorf("Beside with a directory there: %v, want %q", err, want)
	}
}
