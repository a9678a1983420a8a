package boot

import (
	"bytes"
	"testing"

	"github.com/vmm-dev/vmm/guestmem"
)

func TestBuildBzImage_ParseRoundTrip(t *testing.T) {
	tests := []struct {
		name          string
		payloadLen    int
		opts          BzImageOptions
		setupSects    uint8
		cmdlineSize   uint32
		initrdAddrMax uint32
		initSize      uint32
	}{
		{"defaults", 0x300, BzImageOptions{}, 1, 2048, 0x7fffffff, 0x1000},
		{"odd payload length", 0x1235, BzImageOptions{}, 1, 2048, 0x7fffffff, 0x2000},
		{"options", 0x300, BzImageOptions{SetupSects: 4, CmdlineSize: 100, InitrdAddrMax: 0x3fffffff, InitSize: 0x10001},
			4, 100, 0x3fffffff, 0x11000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload := pattern(tt.payloadLen, 1)
			img := BuildBzImage(payload, tt.opts)
			h, err := parse(img)
			if err != nil {
				t.Fatal(err)
			}
			type fields struct {
				SetupSects                   uint8
				CmdlineSize, InitrdAddrMax   uint32
				InitSize                     uint32
				Version, Xloadflags          uint16
				Loadflags, RelocatableKernel uint8
				PrefAddress                  uint64
				KernelSize                   int64
			}
			got := fields{SetupSects: h.SetupSects, CmdlineSize: h.CmdlineSize, InitrdAddrMax: h.InitrdAddrMax,
				InitSize: h.InitSize, Version: h.Version, Xloadflags: h.Xloadflags, Loadflags: h.Loadflags,
				RelocatableKernel: h.RelocatableKernel, PrefAddress: h.PrefAddress, KernelSize: h.KernelSize}
			want := fields{SetupSects: tt.setupSects, CmdlineSize: tt.cmdlineSize, InitrdAddrMax: tt.initrdAddrMax,
				InitSize: tt.initSize, Version: 0x020F, Xloadflags: XLFKernel64, Loadflags: LoadedHigh,
				PrefAddress: 0x100000, KernelSize: int64(tt.payloadLen)}
			if got != want {
				t.Errorf("parsed\n%+v\nwant\n%+v", got, want)
			}
			if !bytes.Equal(img[h.KernelOffset:], payload) {
				t.Error("payload not at KernelOffset")
			}
		})
	}
}

func TestBuildBzImage_Loads(t *testing.T) {
	payload := pattern(0x400, 5)
	img := BuildBzImage(payload, BzImageOptions{})
	mem := guestmem.NewTest(8 << 20)
	st, err := Load(mem, Config{Kernel: bytes.NewReader(img), KernelSize: int64(len(img)), Cmdline: "quiet"})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := mem.Slice(KernelAddr, uint64(len(payload)))
	if st.RIP != uint64(KernelAddr)+0x200 || !bytes.Equal(got, payload) {
		t.Errorf("RIP %#x, payload loaded %v; want 0x100200, true", st.RIP, bytes.Equal(got, payload))
	}
}

func TestBuildBzImage_EmptyPayload_Rejected(t *testing.T) {
	if _, err := parse(BuildBzImage(nil, BzImageOptions{})); err == nil {
		t.Fatal("ParseHeader accepted an image with no payload")
	}
}

// The 16-bit entry's jump must land on setup16 inside the setup sectors,
// and setup16's CS-relative references (gdt 0xb8, gdtr 0xd8, farptr 0xde,
// file offset - 0x200) must point at what they name.
func TestBuildBzImage_Setup16(t *testing.T) {
	img := BuildBzImage(pattern(0x300, 1), BzImageOptions{})
	at := offHeader + int(img[offJump+1])
	if img[offJump] != jumpShort || at != setupHeaderEnd215 || !bytes.Equal(img[at:at+len(setup16)], setup16) {
		t.Fatalf("jump lands at %#x; setup16 not there", at)
	}
	if end, setup := at+len(setup16), (int(img[offSetupSects])+1)*sectorSize; end > setup {
		t.Fatalf("setup16 ends at %#x, past the setup sectors (%#x)", end, setup)
	}
	cs := func(off int) []byte { return img[0x200+off:] }
	if !bytes.Equal(cs(0xb8)[:16], make([]byte, 16)) || cs(0xc8)[5] != 0x9a || cs(0xd0)[5] != 0x92 {
		t.Error("gdt is not null, null, code, data at CS:0xb8")
	}
	if cs(0xd8)[0] != 31 || cs(0xde)[4] != SelectorCode {
		t.Error("gdtr or farptr misplaced")
	}
}
