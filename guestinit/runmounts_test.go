package guestinit

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestRootfsMounts_ReadOnlyImageUnderOverlay(t *testing.T) {
	ms := RootfsMounts("/dev/vda")
	if len(ms) != 3 || ms[0].Source != "/dev/vda" || ms[0].Flags&unix.MS_RDONLY == 0 {
		t.Fatalf("mounts %v: want the image disk first, read-only", ms)
	}
	ov := ms[2]
	if ov.FSType != "overlay" || ov.Target != RunRoot {
		t.Fatalf("last mount %v, want the overlay at %s", ov, RunRoot)
	}
	for _, d := range append(OverlayDirs(), ms[0].Target) {
		if !strings.Contains(ov.Data, d) {
			t.Errorf("overlay options %q do not name %s", ov.Data, d)
		}
	}
	for _, d := range OverlayDirs() {
		if !strings.HasPrefix(d, ms[1].Target+"/") {
			t.Errorf("overlay dir %s is not on the tmpfs at %s", d, ms[1].Target)
		}
	}
}

func TestWorkloadMounts_UnderRootInOrder(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range WorkloadMounts("/r") {
		if !strings.HasPrefix(m.Target, "/r/") {
			t.Errorf("%v is not under the new root", m)
		}
		if parent := m.Target[:strings.LastIndex(m.Target, "/")]; parent != "/r" && !seen[parent] {
			t.Errorf("%v comes before its parent %s is mounted", m, parent)
		}
		seen[m.Target] = true
	}
	for _, want := range []string{"/r/proc", "/r/sys", "/r/dev", "/r/dev/pts", "/r/dev/shm", "/r/run", "/r/tmp"} {
		if !seen[want] {
			t.Errorf("no mount at %s", want)
		}
	}
}
