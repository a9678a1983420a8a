package acpi

import (
	"bytes"
	"strings"
	"testing"
)

func TestAML_PkgLength_Encodings(t *testing.T) {
	tests := []struct {
		body int
		want []byte
	}{
		{0, []byte{0x01}},
		{62, []byte{0x3F}},                          // 63 in one byte
		{63, []byte{0x41, 0x04}},                    // 65 = 0x041: lead nibble 1, then 0x04
		{4093, []byte{0x4F, 0xFF}},                  // 4095, the most two bytes hold
		{4094, []byte{0x81, 0x00, 0x01}},            // 4097 = 0x01001
		{1<<20 - 4, []byte{0x8F, 0xFF, 0xFF}},       // 0xFFFFF
		{1<<20 - 3, []byte{0xC1, 0x00, 0x00, 0x01}}, // 0x100001
		{1<<28 - 5, []byte{0xCF, 0xFF, 0xFF, 0xFF}},
	}
	for _, tt := range tests {
		var a aml
		if got := a.appendPkgLength(nil, tt.body); !bytes.Equal(got, tt.want) || a.err != nil {
			t.Errorf("appendPkgLength(%d) = % x, %v; want % x", tt.body, got, a.err, tt.want)
		}
	}
}

func TestAML_PkgLength_TooLong_Fails(t *testing.T) {
	var a aml
	a.appendPkgLength(nil, 1<<28-4)
	if a.err == nil {
		t.Fatal("no error for a body of 2^28-4 bytes")
	}
}

func TestAML_Integer_ShortestEncoding(t *testing.T) {
	tests := []struct {
		v    uint64
		want []byte
	}{
		{0, []byte{0x00}},
		{1, []byte{0x01}},
		{2, []byte{0x0A, 0x02}},
		{0xFF, []byte{0x0A, 0xFF}},
		{0x100, []byte{0x0B, 0x00, 0x01}},
		{0xFFFF, []byte{0x0B, 0xFF, 0xFF}},
		{0x10000, []byte{0x0C, 0x00, 0x00, 0x01, 0x00}},
		{0xFFFFFFFF, []byte{0x0C, 0xFF, 0xFF, 0xFF, 0xFF}},
		{0x1_0000_0000, []byte{0x0E, 0, 0, 0, 0, 1, 0, 0, 0}},
	}
	for _, tt := range tests {
		if got := amlInteger(tt.v); !bytes.Equal(got, tt.want) {
			t.Errorf("amlInteger(%#x) = % x, want % x", tt.v, got, tt.want)
		}
	}
}

func TestAML_NameString_Encodings(t *testing.T) {
	tests := []struct {
		path string
		want string
	}{
		{"PCI0", "PCI0"},
		{"_S5", "_S5_"},
		{`\_SB`, `\_SB_`},
		{`\`, "\\\x00"},
		{"^^PCI0", "^^PCI0"},
		{`\_SB.PCI0`, "\\\x2E_SB_PCI0"},
		{"_SB.PCI0.ISA", "\x2F\x03_SB_PCI0ISA_"},
	}
	for _, tt := range tests {
		var a aml
		if got := a.nameString(tt.path); string(got) != tt.want || a.err != nil {
			t.Errorf("nameString(%q) = %q, %v; want %q", tt.path, got, a.err, tt.want)
		}
	}
}

func TestAML_NameString_Invalid_Fails(t *testing.T) {
	for _, path := range []string{"", "1ABC", "ABCDE", "pci0", `\_SB..X`, "A-B", "_SB."} {
		var a aml
		a.nameString(path)
		if a.err == nil {
			t.Errorf("nameString(%q): no error", path)
		}
	}
}

func TestAML_NameDeviceScope_HandChecked(t *testing.T) {
	var a aml
	got := a.scope(`\_SB`, a.device("PCI0", a.name("_UID", amlInteger(0))))
	want := []byte{
		0x10, 0x13, '\\', '_', 'S', 'B', '_', // Scope, PkgLength 19 (itself + 18), \_SB_
		0x5B, 0x82, 0x0B, 'P', 'C', 'I', '0', // Device, PkgLength 11 (itself + 10), PCI0
		0x08, '_', 'U', 'I', 'D', 0x00, // Name(_UID, Zero)
	}
	if !bytes.Equal(got, want) || a.err != nil {
		t.Errorf("got % x, %v\nwant % x", got, a.err, want)
	}
}

func TestAML_S5Package_HandChecked(t *testing.T) {
	var a aml
	got := a.name(`\_S5`, a.pkgOf(amlInteger(5), amlInteger(5), amlInteger(0), amlInteger(0)))
	want := []byte{0x08, '\\', '_', 'S', '5', '_', 0x12, 0x08, 0x04, 0x0A, 0x05, 0x0A, 0x05, 0x00, 0x00}
	if !bytes.Equal(got, want) || a.err != nil {
		t.Errorf("got % x, %v\nwant % x", got, a.err, want)
	}
}

func TestAML_EISAID_HandChecked(t *testing.T) {
	tests := []struct {
		id   string
		want []byte
	}{
		{"PNP0A08", []byte{0x0C, 0x41, 0xD0, 0x0A, 0x08}},
		{"PNP0A03", []byte{0x0C, 0x41, 0xD0, 0x0A, 0x03}},
		{"PNP0C0F", []byte{0x0C, 0x41, 0xD0, 0x0C, 0x0F}},
	}
	for _, tt := range tests {
		var a aml
		if got := a.eisaID(tt.id); !bytes.Equal(got, tt.want) || a.err != nil {
			t.Errorf("eisaID(%q) = % x, %v; want % x", tt.id, got, a.err, tt.want)
		}
	}
	for _, bad := range []string{"PNP0A0", "pnp0A08", "PNP0G08"} {
		var a aml
		if a.eisaID(bad); a.err == nil {
			t.Errorf("eisaID(%q): no error", bad)
		}
	}
}

func TestAML_ErrorSticks_FirstWins(t *testing.T) {
	var a aml
	a.nameString("bad1")
	a.nameString("bad2")
	if a.err == nil || !strings.Contains(a.err.Error(), "bad1") {
		t.Errorf("err = %v, want the first failure", a.err)
	}
}

func TestResource_Descriptors_HandChecked(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want []byte
	}{
		{"WordBusNumber 0-0", wordBusNumber(0, 0), []byte{
			0x88, 0x0D, 0x00, 0x02, 0x0C, 0x00,
			0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00}},
		{"IO 0xCF8 x8", ioPort(0x0CF8, 1, 8), []byte{0x47, 0x01, 0xF8, 0x0C, 0xF8, 0x0C, 0x01, 0x08}},
		{"DWordMemory", dwordMemory(0xC000_0000, 0xFEBF_FFFF), []byte{
			0x87, 0x17, 0x00, 0x00, 0x0C, 0x01,
			0, 0, 0, 0, // granularity
			0x00, 0x00, 0x00, 0xC0, // min
			0xFF, 0xFF, 0xBF, 0xFE, // max
			0, 0, 0, 0, // translation
			0x00, 0x00, 0xC0, 0x3E}}, // length
	}
	for _, tt := range tests {
		if !bytes.Equal(tt.got, tt.want) {
			t.Errorf("%s = % x\nwant % x", tt.name, tt.got, tt.want)
		}
	}
}

func TestResource_Template_EndsWithEndTag(t *testing.T) {
	var a aml
	got := a.resourceTemplate(ioPort(0x0CF8, 1, 8))
	// Buffer, PkgLength 13 (itself + size 2 + data 10), size 10, IO, End Tag.
	want := []byte{0x11, 0x0D, 0x0A, 0x0A, 0x47, 0x01, 0xF8, 0x0C, 0xF8, 0x0C, 0x01, 0x08, 0x79, 0x00}
	if !bytes.Equal(got, want) || a.err != nil {
		t.Errorf("got % x, %v\nwant % x", got, a.err, want)
	}
}
