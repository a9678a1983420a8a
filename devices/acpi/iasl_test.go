package acpi

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestTables_IaslDisassembles hands every table to ACPICA's disassembler
// (iasl -d), which checks lengths, checksums and field values and decodes
// the DSDT's AML. It must exit 0 and report no error, invalid field or
// checksum warning. The RSDP is left out: iasl (20200925, Debian 12)
// refuses any binary file whose first four bytes are not a valid NameSeg,
// and "RSD " has a space; TestTables_ChecksumAndLength covers it.
func TestTables_IaslDisassembles(t *testing.T) {
	iasl, err := exec.LookPath("iasl")
	if err != nil {
		t.Fatal("iasl not found: run `make deps` (acpica-tools)")
	}
	dir := t.TempDir()
	tables := writeTables(t, dir)
	for _, name := range []string{"xsdt", "facp", "facs", "apic", "dsdt"} {
		cmd := exec.Command(iasl, "-d", tables[name])
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("iasl -d %s: %v\n%s", name, err, out)
			continue
		}
		dsl, err := os.ReadFile(filepath.Join(dir, name+".dsl"))
		if err != nil {
			t.Fatalf("iasl -d %s wrote no .dsl: %v\n%s", name, err, out)
		}
		text := string(out) + string(dsl)
		for _, bad := range []string{"Error", "Invalid", "ncorrect checksum", "Warning"} {
			if strings.Contains(text, bad) {
				t.Errorf("iasl -d %s: output contains %q:\n%s", name, bad, text)
			}
		}
		if testing.Verbose() {
			t.Logf("%s.dsl:\n%s", name, dsl)
		}
	}
	dsl, _ := os.ReadFile(filepath.Join(dir, "dsdt.dsl"))
	for _, want := range []string{"_S5", "PNP0A08", "PNP0A03", "_CRS", "0xFEBFFFFF", "0x0CF8", "_PRT", "0x0001FFFF"} {
		if !strings.Contains(string(dsl), want) {
			t.Errorf("DSDT disassembly lacks %q", want)
		}
	}
}

// TestDSDT_AcpiexecEvaluates loads the FADT, MADT and DSDT into ACPICA's
// AML interpreter (acpiexec, also in acpica-tools) and evaluates the
// objects Linux uses: \_S5 for power-off and the host bridge's _CRS.
func TestDSDT_AcpiexecEvaluates(t *testing.T) {
	acpiexec, err := exec.LookPath("acpiexec")
	if err != nil {
		t.Fatal("acpiexec not found: run `make deps` (acpica-tools)")
	}
	dir := t.TempDir()
	tables := writeTables(t, dir)
	cmd := exec.Command(acpiexec, "-b", `evaluate \_S5; evaluate \_SB.PCI0._CRS; evaluate \_SB.PCI0._PRT`, tables["dsdt"], tables["facp"], tables["apic"])
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("acpiexec: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "Gpe") || strings.Contains(line, "GPE") {
			continue // acpiexec's own GPE self-tests: we define no GPE block
		}
		for _, bad := range []string{"Error", "Warning", "Invalid", "mismatch", "Exception"} {
			if strings.Contains(line, bad) {
				t.Errorf("acpiexec: %q", line)
			}
		}
	}
	for _, want := range []string{
		"[Package] Contains 4 Elements:\n    [Integer] = 0000000000000005\n    [Integer] = 0000000000000005",
		"0000: 88 0D 00 02 0C 00",          // the _CRS buffer starts with WordBusNumber
		"[Package] Contains 128 Elements:", // _PRT: 32 slots, 4 pins
		// slot 1 INTB# (the 6th entry) goes to GSI 16+(1+1)%8 = 18
		"[Integer] = 000000000001FFFF\n      [Integer] = 0000000000000001\n      [Integer] = 0000000000000000\n      [Integer] = 0000000000000012",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("acpiexec output lacks %q:\n%s", want, out)
		}
	}
}

// writeTables writes each table of a 4-CPU build into dir as NAME.dat and
// returns the paths by name.
func writeTables(t *testing.T, dir string) map[string]string {
	t.Helper()
	img, err := Build(testConfig(4))
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]string{}
	for name, b := range tablesOf(t, img) {
		paths[name] = filepath.Join(dir, name+".dat")
		if err := os.WriteFile(paths[name], b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return paths
}

// tablesOf cuts each table out of img by following the pointers, keyed by
// the lowercase name iasl users know them by.
func tablesOf(t *testing.T, img Image) map[string][]byte {
	t.Helper()
	at := func(addr uint64, n int) []byte {
		off := addr - uint64(img.Base)
		if off+uint64(n) > uint64(len(img.Data)) {
			t.Fatalf("table at %#x runs past the image", addr)
		}
		return img.Data[off : off+uint64(n)]
	}
	sdtAt := func(addr uint64) []byte {
		return at(addr, int(le32(at(addr, headerLen)[hdrLength:])))
	}
	m := map[string][]byte{"rsdp": at(uint64(img.RSDP), rsdpLen)}
	m["xsdt"] = sdtAt(le64(m["rsdp"][rsdpXSDTAddr:]))
	m["facp"] = sdtAt(le64(m["xsdt"][headerLen:]))
	m["apic"] = sdtAt(le64(m["xsdt"][headerLen+xsdtEntryLen:]))
	m["dsdt"] = sdtAt(le64(m["facp"][fadtXDSDT:]))
	m["facs"] = at(le64(m["facp"][fadtXFirmwareCtrl:]), facsLen)
	return m
}
