package microguest

import (
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/vmm-dev/vmm/boot"
)

const (
	loadAddr  = 0x100000
	entry64   = loadAddr + 0x200
	opcodeCLI = 0xfa // first instruction of _start64
)

// forbidden matches instructions the host's software hypervisor cannot
// execute (and SSE/AVX registers, whose state it cannot save), as objdump
// spells them.
var forbidden = regexp.MustCompile(`\b(xsave\w*|xrstor\w*|fxsave\w*|fxrstor\w*|cmpxchg16b|int3|iretq?|clac|stac|endbr64)\b|%[xyz]mm\d`)

// TestGuests compiles every guest once and checks what the boot protocol and
// the host's hypervisor need of it.
func TestGuests(t *testing.T) {
	for _, name := range Guests() {
		t.Run(name, func(t *testing.T) {
			work := t.TempDir()
			payload := payloadT(t, name, work)
			elfPath := filepath.Join(work, name+".elf")
			checkEntry(t, elfPath, payload)
			checkInstructions(t, elfPath)
		})
	}
}

func checkEntry(t *testing.T, elfPath string, payload []byte) {
	f, err := elf.Open(elfPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Entry != entry64 {
		t.Errorf("ELF entry = %#x, want %#x", f.Entry, entry64)
	}
	if got := f.Sections[1].Addr; got != loadAddr {
		t.Errorf("first section %s at %#x, want %#x", f.Sections[1].Name, got, loadAddr)
	}
	if len(payload) <= 0x200 || payload[0x200] != opcodeCLI {
		t.Errorf("payload byte at 0x200 is not the 64-bit entry's cli (len %d)", len(payload))
	}
}

func checkInstructions(t *testing.T, elfPath string) {
	if _, err := exec.LookPath("objdump"); err != nil {
		t.Logf("objdump not available, instructions not checked: %v", err)
		return
	}
	out, err := exec.Command("objdump", "-d", "--no-show-raw-insn", elfPath).Output()
	if err != nil {
		t.Fatalf("objdump: %v", err)
	}
	for _, m := range forbidden.FindAll(out, -1) {
		t.Errorf("forbidden instruction or register %q", m)
	}
}

func TestBuild_IsABzImage(t *testing.T) {
	path, err := Build("hello", t.TempDir())
	if errors.Is(err, ErrNoToolchain) {
		t.Fatalf("%v (run `make deps`)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := boot.ParseHeader(f, st.Size()); err != nil {
		t.Fatalf("ParseHeader(%s): %v", path, err)
	}
}

func TestPayload_UnknownGuest(t *testing.T) {
	_, err := Payload("no-such-guest", t.TempDir())
	if !errors.Is(err, ErrUnknownGuest) {
		t.Fatalf("Payload(no-such-guest) error = %v, want ErrUnknownGuest", err)
	}
}

func payloadT(t *testing.T, name, work string) []byte {
	t.Helper()
	payload, err := Payload(name, work)
	if errors.Is(err, ErrNoToolchain) {
		t.Fatalf("%v (run `make deps`)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return payload
}

// TestBuild_RelativeDir is `make demo`'s case: an output directory given
// relative to the working directory.
func TestBuild_RelativeDir(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.Mkdir("out", 0o755); err != nil {
		t.Fatal(err)
	}
	path, err := Build("hello", "out")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
}
