package vmm

import (
	"os"
	"strings"
	"testing"

	"github.com/vmm-dev/vmm/kvm"
)

func TestSoftwareKVMProfile_MasksCPUID(t *testing.T) {
	entries := []kvm.CPUIDEntry{
		{Function: leafFeatures, ECX: 0xFFFF_FFFF, EDX: 0xFFFF_FFFF},
		{Function: leafExtFeatures, Index: 0, EBX: 0xFFFF_FFFF, ECX: 0xFFFF_FFFF},
		{Function: leafXSAVE, Index: 1, EAX: 7, EBX: 0x340},
		{Function: 0x4000_0000, EBX: 0x4b4d564b},
	}
	SoftwareKVMProfile().maskCPUID(entries)
	for _, c := range []struct {
		name string
		got  uint32
		bit  uint32
	}{
		{"xsave", entries[0].ECX, bit(26)},
		{"cx16", entries[0].ECX, bit(13)},
		{"pcid", entries[0].ECX, bit(17)},
		{"smap", entries[1].EBX, bit(20)},
		{"smep", entries[1].EBX, bit(7)},
		{"fsgsbase", entries[1].EBX, bit(0)},
		{"invpcid", entries[1].EBX, bit(10)},
		{"umip", entries[1].ECX, bit(2)},
		{"pku", entries[1].ECX, bit(3)},
		{"rdpid", entries[1].ECX, bit(22)},
	} {
		if c.got&c.bit != 0 {
			t.Errorf("%s still offered", c.name)
		}
	}
	if entries[0].EDX != 0xFFFF_FFFF {
		t.Errorf("leaf 1 EDX changed: %#x", entries[0].EDX)
	}
	if e := entries[2]; e.EAX|e.EBX|e.ECX|e.EDX != 0 {
		t.Errorf("XSAVE leaf not zeroed: %+v", e)
	}
	if entries[3].EBX != 0x4b4d564b {
		t.Error("KVM signature leaf changed")
	}
}

func TestProfile_AppendCmdline_AddsOnlyWhatIsMissing(t *testing.T) {
	p := Profile{Cmdline: []CmdlineArg{{Arg: "noxsave"}, {Arg: "nopku"}}}
	if got := p.AppendCmdline("console=ttyS0 nopku"); got != "console=ttyS0 nopku noxsave" {
		t.Fatalf("got %q", got)
	}
	if got := (Profile{}).AppendCmdline("console=ttyS0"); got != "console=ttyS0" {
		t.Fatalf("zero profile changed the cmdline: %q", got)
	}
}

// TestSoftwareKVMProfile_Documented keeps docs/software-kvm.md, the one
// place users read about the profile, in step with the code.
func TestSoftwareKVMProfile_Documented(t *testing.T) {
	doc, err := os.ReadFile("../docs/software-kvm.md")
	if err != nil {
		t.Fatal(err)
	}
	p := SoftwareKVMProfile()
	for _, m := range p.CPUID {
		if !strings.Contains(string(doc), "`"+m.Feature+"`") {
			t.Errorf("docs/software-kvm.md does not explain the %s mask", m.Feature)
		}
	}
	for _, a := range p.Cmdline {
		if !strings.Contains(string(doc), "`"+a.Arg+"`") {
			t.Errorf("docs/software-kvm.md does not explain %s", a.Arg)
		}
	}
}
