package e2e

import (
	"hash/fnv"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"testing"

	"github.com/vmm-dev/vmm/boot"
	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/vmm"
	"github.com/vmm-dev/vmm/vmtest"
)

// bootInfo is what the bootinfo guest found in its boot_params.
type bootInfo struct {
	cmdline    string
	e820       []boot.E820Entry
	initrdAddr uint64
	initrdSize uint64
	initrdFNV  uint64 // FNV-1a-32 of the initrd bytes in guest memory
}

var (
	cmdlineLine = regexp.MustCompile(`(?m)^cmdline: \[(.*)\]$`)
	e820Line    = regexp.MustCompile(`(?m)^e820: addr=0x([0-9a-f]+) size=0x([0-9a-f]+) type=(\d+)$`)
	initrdLine  = regexp.MustCompile(`(?m)^initrd: addr=0x([0-9a-f]+) size=0x([0-9a-f]+) fnv1a=0x([0-9a-f]+)$`)
	endLine     = regexp.MustCompile(`(?m)^bootinfo: end$`)
)

// parseBootInfo reads the bootinfo guest's report (format in
// internal/microguest/src/bootinfo.c).
func parseBootInfo(t *testing.T, console string) bootInfo {
	t.Helper()
	if !endLine.MatchString(console) {
		t.Fatalf("bootinfo report incomplete:\n%s", console)
	}
	var bi bootInfo
	m := cmdlineLine.FindStringSubmatch(console)
	if m == nil {
		t.Fatalf("no cmdline line:\n%s", console)
	}
	bi.cmdline = m[1]
	for _, m := range e820Line.FindAllStringSubmatch(console, -1) {
		bi.e820 = append(bi.e820, boot.E820Entry{
			Addr: parseUint(t, m[1], 16),
			Size: parseUint(t, m[2], 16),
			Type: boot.E820Type(parseUint(t, m[3], 10)),
		})
	}
	m = initrdLine.FindStringSubmatch(console)
	if m == nil {
		t.Fatalf("no initrd line:\n%s", console)
	}
	bi.initrdAddr, bi.initrdSize, bi.initrdFNV = parseUint(t, m[1], 16), parseUint(t, m[2], 16), parseUint(t, m[3], 16)
	return bi
}

func parseUint(t *testing.T, s string, base int) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(s, base, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestBootInfo(t *testing.T) {
	const (
		memSize    = 128 << 20
		initrdSize = 5000 // not a page multiple, so a rounded size shows
		cmdline    = "console=ttyS0 vmmtest=42 quoted"
	)
	kernel := guest(t, "bootinfo")
	initrd := writeRandom(t, "initrd.img", initrdSize)
	res := vmtest.Run(t, vmtest.Config{Kernel: kernel, Initrd: initrd, Cmdline: cmdline, Memory: "128M",
		// The exact cmdline is the point; the software-kvm profile would extend it.
		Args: []string{"--compat=off"}}, guestTimeout)
	if res.Code != vmm.StatusGuestOff {
		t.Errorf("exit status %d, want %d", res.Code, vmm.StatusGuestOff)
	}
	bi := parseBootInfo(t, res.Console)

	if bi.cmdline != cmdline {
		t.Errorf("guest cmdline = %q, want %q", bi.cmdline, cmdline)
	}
	regions, err := guestmem.X86Layout(memSize)
	if err != nil {
		t.Fatal(err)
	}
	if want := boot.E820Map(regions); !reflect.DeepEqual(bi.e820, want) {
		t.Errorf("guest e820 = %+v, want %+v", bi.e820, want)
	}
	checkInitrd(t, bi, initrd, memSize)
}

// checkInitrd checks the initrd sits page-aligned in RAM below the MMIO
// hole and that the guest saw the host's bytes.
func checkInitrd(t *testing.T, bi bootInfo, path string, memSize uint64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	end := bi.initrdAddr + bi.initrdSize
	if bi.initrdAddr%4096 != 0 || bi.initrdAddr < 0x100000 || end > memSize || end > uint64(guestmem.MMIOHoleStart) {
		t.Errorf("initrd at [%#x, %#x): want page-aligned, in RAM above 1 MiB and below %#x", bi.initrdAddr, end, min(memSize, uint64(guestmem.MMIOHoleStart)))
	}
	if bi.initrdSize != uint64(len(data)) {
		t.Errorf("initrd size = %d, want %d", bi.initrdSize, len(data))
	}
	h := fnv.New32a()
	h.Write(data)
	if want := uint64(h.Sum32()); bi.initrdFNV != want {
		t.Errorf("guest's FNV-1a-32 of the initrd = %#x, host's = %#x", bi.initrdFNV, want)
	}
}
