package vmm

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmm-dev/vmm/boot"
	"github.com/vmm-dev/vmm/guestmem"
)

// fakeVmlinux is a Config.Vmlinux that answers err, or a one-segment
// layout at 16 MiB when err is nil, and records its calls.
type fakeVmlinux struct {
	err      error
	calls    int
	released int
}

const fakeEntry = 0x100_0000

func (f *fakeVmlinux) get(string) (*boot.Vmlinux, func(), error) {
	f.calls++
	if f.err != nil {
		return nil, nil, f.err
	}
	image := bytes.Repeat([]byte{0xF4}, 0x1000) // hlt
	return &boot.Vmlinux{Image: bytes.NewReader(image), ImageSize: int64(len(image)), Entry: fakeEntry,
		Segments: []boot.VmlinuxSegment{{Paddr: fakeEntry, Filesz: 0x1000, Memsz: 0x2000}}}, func() { f.released++ }, nil
}

// loadWith runs loadKernel for a BuildBzImage kernel with the software-KVM
// profile's host decompression and f as Config.Vmlinux.
func loadWith(t *testing.T, f *fakeVmlinux, hostDecompress bool) (*boot.EntryState, string, error) {
	t.Helper()
	kernel := filepath.Join(t.TempDir(), "bzImage")
	payload := make([]byte, 0x200, 0x202)
	if err := os.WriteFile(kernel, boot.BuildBzImage(append(payload, 0xEB, 0xFE), boot.BzImageOptions{}), 0o644); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	m := &Machine{
		cfg: Config{Kernel: kernel, Profile: Profile{HostDecompress: hostDecompress}, Vmlinux: f.get, Log: &log},
		mem: guestmem.NewTest(64 << 20),
	}
	entry, err := m.loadKernel()
	if err == nil && entry.RIP == fakeEntry {
		if b, _ := m.mem.Slice(fakeEntry, 0x2000); b[0] != 0xF4 || b[0x1FFF] != 0 {
			t.Error("the vmlinux segment is not in guest memory")
		}
	}
	return entry, log.String(), err
}

const bzImageEntry = uint64(boot.KernelAddr) + 0x200

func TestLoadKernel_HostVmlinux(t *testing.T) {
	f := &fakeVmlinux{}
	entry, _, err := loadWith(t, f, true)
	if err != nil {
		t.Fatal(err)
	}
	if entry.RIP != fakeEntry || f.calls != 1 || f.released != 1 {
		t.Fatalf("RIP %#x, %d calls, %d releases; want the vmlinux entry, 1, 1", entry.RIP, f.calls, f.released)
	}
}

// Kernels the host cannot unpack, and a host without vmm-images, boot
// the bzImage as is; any other error fails the load and says why.
func TestLoadKernel_HostVmlinux_Fallback(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		fallback bool
		warning  string
	}{
		{"xz", &boot.UnsupportedCompressionError{Format: "xz"}, true, ""},
		{"no payload", boot.ErrNoPayload, true, ""},
		{"no vmm-images", fmt.Errorf("%w: vmm-images is not installed", ErrHostDecompressUnavailable), true, "vmm-images is not installed"},
		{"corrupt kernel", &boot.PayloadError{Format: "gzip", Reason: "corrupt stream"}, false, ""},
		{"tool died", errors.New("vmm-images vmlinux: signal: killed"), false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entry, log, err := loadWith(t, &fakeVmlinux{err: tt.err}, true)
			if !tt.fallback {
				if err == nil || !errors.Is(err, tt.err) || !strings.Contains(err.Error(), "load kernel ") {
					t.Fatalf("err = %v, want load kernel ...: %v", err, tt.err)
				}
				return
			}
			if err != nil || entry.RIP != bzImageEntry {
				t.Fatalf("err %v, RIP %#x; want the bzImage entry %#x", err, entry.RIP, bzImageEntry)
			}
			if !strings.Contains(log, tt.warning) || (tt.warning == "") != (log == "") {
				t.Errorf("log %q, want a warning about %q", log, tt.warning)
			}
		})
	}
}

// Without the profile's host decompression the function is not asked.
func TestLoadKernel_NoHostDecompress_NotAsked(t *testing.T) {
	f := &fakeVmlinux{}
	entry, _, err := loadWith(t, f, false)
	if err != nil || entry.RIP != bzImageEntry || f.calls != 0 {
		t.Fatalf("err %v, RIP %#x, %d calls", err, entry.RIP, f.calls)
	}
}

// A layout that does not fit the guest is boot's error, with the path.
func TestLoadKernel_HostVmlinux_Checked(t *testing.T) {
	bad := func(string) (*boot.Vmlinux, func(), error) {
		return &boot.Vmlinux{Image: bytes.NewReader(nil), Entry: 0x7000,
			Segments: []boot.VmlinuxSegment{{Paddr: 0x7000, Memsz: 0x1000}}}, func() {}, nil
	}
	m := &Machine{cfg: Config{Kernel: writeGuest(t, []byte{0xF4}), Profile: Profile{HostDecompress: true}, Vmlinux: bad},
		mem: guestmem.NewTest(64 << 20)}
	if _, err := m.loadKernel(); !errors.Is(err, boot.ErrNotVmlinux) || !strings.Contains(err.Error(), "zero page") {
		t.Fatalf("err = %v, want ErrNotVmlinux about the zero page", err)
	}
}
