package boot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/vmm-dev/vmm/guestmem"
)

// loadVmlinux loads v with a bzImage (the synth layout) whose
// initrd_addr_max is initrdMax (0: the synth default).
func loadVmlinux(t *testing.T, mem *guestmem.Memory, v *Vmlinux, initrdMax uint32, initrdSize int64) (*EntryState, error) {
	t.Helper()
	k := defaultSynth().bytes()
	if initrdMax != 0 {
		binary.LittleEndian.PutUint32(k[0x22C:], initrdMax)
	}
	cfg := Config{Kernel: bytes.NewReader(k), KernelSize: int64(len(k)), Cmdline: "console=ttyS0", Vmlinux: v}
	if initrdSize > 0 {
		cfg.Initrd, cfg.InitrdSize = zeroReader{}, initrdSize
	}
	return Load(mem, cfg)
}

func TestLoad_Vmlinux_PlacesSegments(t *testing.T) {
	mem := guestmem.NewTest(testMem)
	bss := read(t, mem, testData+0x1000, 0x4000)
	for i := range bss {
		bss[i] = 0xAA
	}
	st, err := loadVmlinux(t, mem, testVmlinux(), 0, 0x12345)
	if err != nil {
		t.Fatal(err)
	}
	if st.RIP != testText || st.RSI != 0x7000 || st.CR3 != 0x9000 || st.EFER != 0x500 {
		t.Errorf("RIP %#x RSI %#x CR3 %#x EFER %#x", st.RIP, st.RSI, st.CR3, st.EFER)
	}
	if !bytes.Equal(read(t, mem, testText, 0x3000), pattern(0x3000, 5)) ||
		!bytes.Equal(read(t, mem, testData, 0x1000), pattern(0x1000, 11)) {
		t.Error("segment bytes differ")
	}
	if !bytes.Equal(bss, make([]byte, len(bss))) {
		t.Error("bss not zeroed")
	}
	if got := read(t, mem, KernelAddr, 0x1000); bytes.Equal(got, defaultSynth().payload) {
		t.Error("the bzImage's protected-mode code was loaded too")
	}
	zp := read(t, mem, ZeroPageAddr, 0x1000)
	le := binary.LittleEndian
	if le.Uint32(zp[0x202:]) != HeaderMagic || le.Uint32(zp[0x228:]) != 0x20000 || zp[0x1E8] != 4 {
		t.Error("zero page lacks the setup header, cmdline or e820 map")
	}
	if img := uint64(le.Uint32(zp[0x218:])); img < testData+0x5000 || img+0x12345 > testMem {
		t.Errorf("initrd at %#x overlaps the vmlinux or runs past RAM", img)
	}
	if got := read(t, mem, CmdlineAddr, 14); string(got) != "console=ttyS0\x00" {
		t.Errorf("cmdline %q", got)
	}
}

func TestLoad_Vmlinux_InitrdClearsBss(t *testing.T) {
	// initrd_addr_max puts the ceiling at 17 MiB; the vmlinux's bss ends
	// at 0x1015000, so 0xEB000 bytes fit and 0xEC000 do not.
	const ceiling = 0x110_0000
	mem := guestmem.NewTest(testMem)
	st, err := loadVmlinux(t, mem, testVmlinux(), ceiling-1, 0xEB000)
	if err != nil {
		t.Fatal(err)
	}
	if img := binary.LittleEndian.Uint32(read(t, mem, ZeroPageAddr+0x218, 4)); img != 0x101_5000 || st.RIP != testText {
		t.Errorf("initrd at %#x, want 0x1015000", img)
	}
	_, err = loadVmlinux(t, guestmem.NewTest(testMem), testVmlinux(), ceiling-1, 0xEC000)
	var ie *InitrdTooLargeError
	if !errors.As(err, &ie) || ie.Low != 0x101_5000 {
		t.Fatalf("err = %v, want InitrdTooLargeError with Low 0x1015000", err)
	}
}

// Load checks the layout against the guest's RAM before writing anything.
func TestLoad_Vmlinux_Errors(t *testing.T) {
	overZeroPage := testVmlinux()
	overZeroPage.Segments[0].Paddr = 0x7000
	tests := []struct {
		name string
		v    *Vmlinux
		mem  uint64
		want error
	}{
		{"segment over the zero page", overZeroPage, testMem, ErrNotVmlinux},
		{"segment past RAM", testVmlinux(), 16 << 20, ErrKernelTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := guestmem.NewTest(tt.mem)
			_, err := loadVmlinux(t, mem, tt.v, 0, 0)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if got := read(t, mem, ZeroPageAddr, 0x1000); !bytes.Equal(got, make([]byte, 0x1000)) {
				t.Error("the zero page was written before the check failed")
			}
		})
	}
}
