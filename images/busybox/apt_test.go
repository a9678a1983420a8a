package busybox

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmm-dev/vmm/images"
)

// Fake apt tools for images.DownloadDeb: until `apt-get update` runs, the
// lists name version 1:1.0-1, which the "mirror" no longer has (404), as
// on a machine whose lists went stale; after it they name 1:1.0-2. They
// use only the shell's builtins, so PATH can be just their directory.
const (
	fakeAptCache = `#!/bin/sh
v=1; [ -f "$FAKE_APT_STATE/updated" ] && v=2
printf 'Package: %s\nVersion: 1:1.0-%s\n\n' "$3" "$v"
`
	fakeAptGet = `#!/bin/sh
case "$1" in
update) : >"$FAKE_APT_STATE/updated" ;;
download)
	[ "$3" = "busybox-static=1:1.0-2" ] || { echo "E: Failed to fetch $3  404  Not Found" >&2; exit 100; }
	echo deb >busybox-static_1.0-2_amd64.deb ;;
esac
`
)

func installFakeApt(t *testing.T) {
	t.Helper()
	bin, state := t.TempDir(), t.TempDir()
	for name, script := range map[string]string{"apt-cache": fakeAptCache, "apt-get": fakeAptGet} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin)
	t.Setenv("FAKE_APT_STATE", state)
}

func TestDownloadDeb_StaleListsAsRoot_UpdatesAndRetries(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIP: DownloadDeb refreshes apt lists only as root")
	}
	installFakeApt(t)
	deb, pkg, err := images.DownloadDeb(context.Background(), Package, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if pkg != (images.DebPackage{Name: Package, Version: "1:1.0-2"}) || filepath.Base(deb) != "busybox-static_1.0-2_amd64.deb" {
		t.Errorf("got %s, %+v; want version 1:1.0-2 after apt-get update", deb, pkg)
	}
}

func TestDownloadDeb_NoApt_SaysSo(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, _, err := images.DownloadDeb(context.Background(), Package, t.TempDir())
	if !errors.Is(err, images.ErrDebDownload) || !strings.Contains(err.Error(), "apt-cache not found") {
		t.Errorf("err = %v, want ErrDebDownload saying apt-cache is missing", err)
	}
}
