package container

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmm-dev/vmm/boot"
	"github.com/vmm-dev/vmm/vmm"
)

// The reply carries the error word for word, and the flag brings back the
// sentinel vmm's fallback tests with errors.Is; other errors match neither.
func TestVmlinuxReply_ErrorRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		fallback string
		is       error
	}{
		{"xz", &boot.UnsupportedCompressionError{Format: "xz"}, FallbackCompression, boot.ErrUnsupportedCompression},
		{"no payload, wrapped", errors.Join(errors.New("context"), boot.ErrNoPayload), FallbackNoPayload, boot.ErrNoPayload},
		{"corrupt gzip", &boot.PayloadError{Format: "gzip", Reason: "corrupt stream"}, "", nil},
		{"not a vmlinux", &boot.VmlinuxError{Reason: "no PT_LOAD segments"}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(NewVmlinuxReply("", nil, tt.err))
			if err != nil {
				t.Fatal(err)
			}
			var reply VmlinuxReply
			if err := json.Unmarshal(b, &reply); err != nil {
				t.Fatal(err)
			}
			got := reply.err()
			if reply.Fallback != tt.fallback || got == nil || got.Error() != tt.err.Error() {
				t.Fatalf("reply %s: fallback %q, error %v; want %q, %q", b, reply.Fallback, got, tt.fallback, tt.err)
			}
			for _, s := range []error{boot.ErrUnsupportedCompression, boot.ErrNoPayload} {
				if want := s == tt.is; errors.Is(got, s) != want {
					t.Errorf("errors.Is(%v, %v) = %v, want %v", got, s, !want, want)
				}
			}
		})
	}
}

// fakeVmlinuxTool writes a vmm-images stand-in that checks its arguments
// and prints reply.
func fakeVmlinuxTool(t *testing.T, reply string, status int) string {
	t.Helper()
	tool := filepath.Join(t.TempDir(), "vmm-images")
	script := "#!/bin/sh\n[ \"$1\" = vmlinux ] && [ \"$2\" = -- ] && [ -n \"$3\" ] || { echo bad arguments \"$@\" >&2; exit 9; }\n" +
		"echo working >&2\nprintf '%s\\n' '" + reply + "'\nexit " + string(rune('0'+status)) + "\n"
	if err := os.WriteFile(tool, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return tool
}

func TestRunVmlinux_OpensTheCachedImage(t *testing.T) {
	image := filepath.Join(t.TempDir(), "vmlinux")
	if err := os.WriteFile(image, []byte("0123456789abcdef"), 0o644); err != nil {
		t.Fatal(err)
	}
	layout := boot.Vmlinux{ImageSize: 16, Entry: 0x100_0000, Segments: []boot.VmlinuxSegment{{Paddr: 0x100_0000, Off: 4, Filesz: 8, Memsz: 0x1000}}}
	b, _ := json.Marshal(VmlinuxReply{Image: image, Layout: &layout})
	v, release, err := runVmlinux(t.Context(), fakeVmlinuxTool(t, string(b), 0), "/k/bzImage")
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 8)
	if _, err := v.Image.ReadAt(got, 4); err != nil || string(got) != "456789ab" {
		t.Fatalf("image reads %q, %v", got, err)
	}
	if v.ImageSize != 16 || v.Entry != layout.Entry || len(v.Segments) != 1 || v.Segments[0] != layout.Segments[0] {
		t.Errorf("layout %+v, want %+v", v, layout)
	}
	release()
	if _, err := v.Image.ReadAt(got, 0); err == nil {
		t.Error("image still open after release")
	}
}

// A temporary image (no cache) is removed as soon as it is open; the open
// file still reads; a cached one is left in place.
func TestRunVmlinux_TemporaryImageRemovedOnceOpen(t *testing.T) {
	for _, temporary := range []bool{true, false} {
		image := filepath.Join(t.TempDir(), "vmm-vmlinux-1")
		if err := os.WriteFile(image, []byte("0123456789abcdef"), 0o644); err != nil {
			t.Fatal(err)
		}
		layout := boot.Vmlinux{ImageSize: 16}
		b, _ := json.Marshal(VmlinuxReply{Image: image, Layout: &layout, Temporary: temporary})
		v, release, err := runVmlinux(t.Context(), fakeVmlinuxTool(t, string(b), 0), "/k")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(image); os.IsNotExist(err) != temporary {
			t.Errorf("temporary %v: image exists after open: %v", temporary, err == nil)
		}
		got := make([]byte, 4)
		if _, err := v.Image.ReadAt(got, 0); err != nil || string(got) != "0123" {
			t.Errorf("temporary %v: reads %q, %v", temporary, got, err)
		}
		release()
	}
}

// The image size is the file's, not the reply's: boot.Load checks the
// layout against what it will read.
func TestRunVmlinux_ImageSizeIsTheFiles(t *testing.T) {
	image := filepath.Join(t.TempDir(), "vmlinux")
	os.WriteFile(image, make([]byte, 10), 0o644)
	b, _ := json.Marshal(VmlinuxReply{Image: image, Layout: &boot.Vmlinux{ImageSize: 1 << 20}})
	v, release, err := runVmlinux(t.Context(), fakeVmlinuxTool(t, string(b), 0), "/k")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if v.ImageSize != 10 {
		t.Fatalf("image size %d, want the file's 10", v.ImageSize)
	}
}

func TestRunVmlinux_Errors(t *testing.T) {
	tests := []struct {
		name   string
		reply  string
		status int
		want   string // in the error
		is     error
	}{
		{"fallback", `{"Error":"kernel payload is xz-compressed","Fallback":"unsupported-compression"}`, 1,
			"kernel payload is xz-compressed", boot.ErrUnsupportedCompression},
		{"no payload", `{"Error":"no payload","Fallback":"no-payload"}`, 1, "no payload", boot.ErrNoPayload},
		{"corrupt kernel", `{"Error":"kernel payload (gzip): corrupt stream: flate: corrupt input"}`, 1,
			"kernel payload (gzip): corrupt stream: flate: corrupt input", nil},
		{"dies without a reply", ``, 3, "exit status 3: working", nil},
		{"garbage", `not json`, 0, "unreadable reply", nil},
		{"no image", `{}`, 0, "no image in the reply", nil},
		{"image missing", `{"Image":"/nonexistent/vmlinux","Layout":{"ImageSize":1}}`, 0, "open the decompressed kernel", os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runVmlinux(t.Context(), fakeVmlinuxTool(t, tt.reply, tt.status), "/k")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one about %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want errors.Is %v", err, tt.is)
			}
			if tt.is == nil && (errors.Is(err, boot.ErrUnsupportedCompression) || errors.Is(err, boot.ErrNoPayload)) {
				t.Errorf("err = %v would fall back", err)
			}
		})
	}
}

// writeBzImage writes a bzImage whose header says it has a payload of
// payloadLen bytes (0: none, as micro-guests).
func writeBzImage(t *testing.T, payloadLen uint32) string {
	t.Helper()
	b := boot.BuildBzImage(make([]byte, 0x1000), boot.BzImageOptions{})
	binary.LittleEndian.PutUint32(b[0x248:], 0x200) // payload_offset
	binary.LittleEndian.PutUint32(b[0x24C:], payloadLen)
	p := filepath.Join(t.TempDir(), "bzImage")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// A bzImage without a payload falls back at once: no vmm-images runs.
func TestHostVmlinux_NoPayload_WithoutTheTool(t *testing.T) {
	t.Setenv(ToolEnv, "/nonexistent/vmm-images")
	if _, _, err := HostVmlinux(writeBzImage(t, 0)); !errors.Is(err, boot.ErrNoPayload) {
		t.Fatalf("err = %v, want ErrNoPayload", err)
	}
	if _, _, err := HostVmlinux(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing kernel: %v", err)
	}
}

// Without vmm-images the error says so, names `make build`, and is the
// one vmm falls back on with a warning.
func TestHostVmlinux_ToolMissing(t *testing.T) {
	t.Setenv(ToolEnv, "")
	_, _, err := HostVmlinux(writeBzImage(t, 0x100))
	if !errors.Is(err, vmm.ErrHostDecompressUnavailable) || !strings.Contains(err.Error(), "make build") {
		t.Fatalf("err = %v, want ErrHostDecompressUnavailable naming make build", err)
	}
}

func TestHostVmlinux_RunsTheTool(t *testing.T) {
	t.Setenv(ToolEnv, fakeVmlinuxTool(t, `{"Error":"bad","Fallback":"unsupported-compression"}`, 1))
	if _, _, err := HostVmlinux(writeBzImage(t, 0x100)); !errors.Is(err, boot.ErrUnsupportedCompression) || err.Error() != "bad" {
		t.Fatalf("err = %v, want the tool's", err)
	}
}

// vmm run's machines decompress on the host under the software-KVM
// profile, as vmm boot's do.
func TestPrepared_Config_HostVmlinux(t *testing.T) {
	if (&Prepared{}).Config(Machine{}).Vmlinux == nil {
		t.Fatal("Config has no Vmlinux")
	}
}
