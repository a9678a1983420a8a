package boot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/vmm-dev/vmm/guestmem"
)

// loadVmlinux wraps the ELF of spec, compressed as format, in a bzImage
// whose initrd_addr_max is initrdMax (0: the synth default) and loads it
// with HostDecompress.
func loadVmlinux(t *testing.T, mem *guestmem.Memory, spec elfSpec, format Compression, initrdMax uint32, initrdSize int64) (*EntryState, error) {
	t.Helper()
	k := wrapPayload(compressFor(t, format, testELF(t, spec)))
	if initrdMax != 0 {
		binary.LittleEndian.PutUint32(k[0x22C:], initrdMax)
	}
	cfg := Config{Kernel: bytes.NewReader(k), KernelSize: int64(len(k)), Cmdline: "console=ttyS0", HostDecompress: true}
	if initrdSize > 0 {
		cfg.Initrd, cfg.InitrdSize = zeroReader{}, initrdSize
	}
	return Load(mem, cfg)
}

func TestLoad_HostDecompress_PlacesVmlinux(t *testing.T) {
	for _, f := range []Compression{CompressionGzip, CompressionLZ4} {
		t.Run(string(f), func(t *testing.T) {
			mem := guestmem.NewTest(testMem)
			bss := read(t, mem, testData+0x1000, 0x4000)
			for i := range bss {
				bss[i] = 0xAA
			}
			spec := defaultELF()
			st, err := loadVmlinux(t, mem, spec, f, 0, 0x12345)
			if err != nil {
				t.Fatal(err)
			}
			if st.RIP != testText || st.RSI != 0x7000 || st.CR3 != 0x9000 || st.EFER != 0x500 {
				t.Errorf("RIP %#x RSI %#x CR3 %#x EFER %#x", st.RIP, st.RSI, st.CR3, st.EFER)
			}
			if !bytes.Equal(read(t, mem, testText, 0x3000), spec.segs[0].data) ||
				!bytes.Equal(read(t, mem, testData, 0x1000), spec.segs[2].data) {
				t.Error("segment bytes differ")
			}
			if !bytes.Equal(bss, make([]byte, len(bss))) {
				t.Error("bss not zeroed")
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
		})
	}
}

func TestLoad_HostDecompress_InitrdClearsBss(t *testing.T) {
	// initrd_addr_max puts the ceiling at 17 MiB; the vmlinux's bss ends
	// at 0x1015000, so 0xEB000 bytes fit and 0xEC000 do not.
	const ceiling = 0x110_0000
	mem := guestmem.NewTest(testMem)
	st, err := loadVmlinux(t, mem, defaultELF(), CompressionLZ4, ceiling-1, 0xEB000)
	if err != nil {
		t.Fatal(err)
	}
	if img := binary.LittleEndian.Uint32(read(t, mem, ZeroPageAddr+0x218, 4)); img != 0x101_5000 || st.RIP != testText {
		t.Errorf("initrd at %#x, want 0x1015000", img)
	}
	_, err = loadVmlinux(t, guestmem.NewTest(testMem), defaultELF(), CompressionLZ4, ceiling-1, 0xEC000)
	var ie *InitrdTooLargeError
	if !errors.As(err, &ie) || ie.Low != 0x101_5000 {
		t.Fatalf("err = %v, want InitrdTooLargeError with Low 0x1015000", err)
	}
}

func TestLoad_HostDecompress_Errors(t *testing.T) {
	overZeroPage := defaultELF()
	overZeroPage.segs[0].paddr = 0x7000
	wrongMachine := defaultELF()
	wrongMachine.machine = 183
	tests := []struct {
		name string
		spec elfSpec
		mem  uint64
		want error
	}{
		{"segment over the zero page", overZeroPage, testMem, ErrNotVmlinux},
		{"wrong machine", wrongMachine, testMem, ErrNotVmlinux},
		{"segment past RAM", defaultELF(), 16 << 20, ErrKernelTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadVmlinux(t, guestmem.NewTest(tt.mem), tt.spec, CompressionGzip, 0, 0)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestLoad_HostDecompress_NotELF(t *testing.T) {
	k := wrapPayload(compressFor(t, CompressionLZ4, pattern(0x4000, 1)))
	_, err := Load(guestmem.NewTest(testMem), Config{Kernel: bytes.NewReader(k), KernelSize: int64(len(k)), HostDecompress: true})
	if !errors.Is(err, ErrNotVmlinux) {
		t.Fatalf("err = %v, want ErrNotVmlinux", err)
	}
}
