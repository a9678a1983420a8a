package guestmem

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestNew_AlignsAndAdvisesHugePages: every region starts on a 2 MiB host
// boundary (so KVM can map the guest with large pages), the boot area of
// the region at 0 is left on small pages and the rest is marked for
// transparent huge pages (VmFlags "hg" in smaps).
func TestNew_AlignsAndAdvisesHugePages(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage/enabled"); err != nil {
		t.Skipf("this kernel has no transparent huge pages (%v); only alignment matters there", err)
	}
	m, err := New([]RegionSpec{{Start: 0, Size: 64 << 20}, {Start: MMIOHoleEnd, Size: 6 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	hr := m.HostRegions()
	for _, r := range hr {
		if r.HostAddr%HugePageSize != 0 {
			t.Errorf("region at %v is mapped at %#x, not 2 MiB aligned", r.Start, r.HostAddr)
		}
	}
	flags := vmFlags(t)
	cases := []struct {
		addr uintptr
		huge bool
	}{
		{hr[0].HostAddr, false},                   // boot area
		{hr[0].HostAddr + bootArea - 4096, false}, // its last page
		{hr[0].HostAddr + bootArea, true},
		{hr[0].HostAddr + 64<<20 - 4096, true},
		{hr[1].HostAddr, true}, // a region above 4 GiB has no boot area
	}
	for _, c := range cases {
		f, ok := flagsAt(flags, c.addr)
		if !ok {
			t.Fatalf("%#x is not mapped", c.addr)
		}
		if got := strings.Contains(" "+f+" ", " hg "); got != c.huge {
			t.Errorf("%#x: huge-page advice %v, want %v (VmFlags %q)", c.addr, got, c.huge, f)
		}
	}
}

type vma struct {
	start, end uintptr
	flags      string
}

// vmFlags reads this process's mappings and their VmFlags from smaps.
func vmFlags(t *testing.T) []vma {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no smaps: %v", err)
	}
	defer f.Close()
	var out []vma
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		var s, e uintptr
		if n, _ := fmt.Sscanf(line, "%x-%x", &s, &e); n == 2 && strings.Contains(line, " ") {
			out = append(out, vma{start: s, end: e})
		} else if rest, ok := strings.CutPrefix(line, "VmFlags:"); ok && len(out) > 0 {
			out[len(out)-1].flags = strings.TrimSpace(rest)
		}
	}
	return out
}

func flagsAt(vmas []vma, addr uintptr) (string, bool) {
	for _, v := range vmas {
		if v.start <= addr && addr < v.end {
			return v.flags, true
		}
	}
	return "", false
}

// TestClose_UnmapsAlignedRegions: Close gives back exactly what New mapped
// (the aligned mapping is not one Go's unix.Munmap knows).
func TestClose_UnmapsAlignedRegions(t *testing.T) {
	m, err := New([]RegionSpec{{Start: 0, Size: 8 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	addr := m.HostRegions()[0].HostAddr
	if err := m.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, ok := flagsAt(vmFlags(t), addr); ok {
		t.Fatalf("%#x is still mapped after Close", addr)
	}
}
