package guestinit

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseModuleList(t *testing.T) {
	got := ParseModuleList("# dependencies first\n/lib/modules/r/a.ko\n\n  /lib/modules/r/b.ko  \n")
	if want := []string{"/lib/modules/r/a.ko", "/lib/modules/r/b.ko"}; !slices.Equal(got, want) {
		t.Errorf("ParseModuleList = %q, want %q", got, want)
	}
}

func TestLoadModules_NoList_NothingToDo(t *testing.T) {
	if err := LoadModules(filepath.Join(t.TempDir(), "none")); err != nil {
		t.Errorf("LoadModules without a list: %v", err)
	}
}

// Only modules that cannot be opened: the test must never load one into
// the host's kernel.
func TestLoadModules_MissingModules_AllReported(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "order")
	if err := os.WriteFile(list, []byte(dir+"/a.ko\n"+dir+"/b.ko\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := LoadModules(list)
	if err == nil || !strings.Contains(err.Error(), "load module "+dir+"/a.ko") || !strings.Contains(err.Error(), "b.ko") {
		t.Errorf("LoadModules = %v, want errors naming a.ko and b.ko", err)
	}
}
