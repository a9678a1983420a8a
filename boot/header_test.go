package boot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

// synth describes a synthetic bzImage. Its bytes are laid out here with
// boot.rst's offsets written out, independently of header.go's constants and
// of BuildBzImage, so a wrong constant cannot hide behind itself.
type synth struct {
	version       uint16
	xloadflags    uint16
	setupSects    uint8
	cmdlineSize   uint32
	initrdAddrMax uint32
	initSize      uint32
	prefAddress   uint64
	kernelAlign   uint32
	relocatable   uint8
	payload       []byte
}

func defaultSynth() synth {
	return synth{
		version:       0x020F,
		xloadflags:    1, // XLF_KERNEL_64
		setupSects:    1,
		cmdlineSize:   2048,
		initrdAddrMax: 0x7fffffff,
		initSize:      0x20000,
		prefAddress:   0x100000,
		kernelAlign:   0x200000,
		payload:       pattern(0x1000, 3),
	}
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)*7 + seed
	}
	return b
}

func (s synth) bytes() []byte {
	sects := int(s.setupSects)
	if sects == 0 {
		sects = 4
	}
	setup := (sects + 1) * 512
	b := make([]byte, setup+len(s.payload))
	copy(b[setup:], s.payload)
	le := binary.LittleEndian
	b[0x1F1] = s.setupSects
	le.PutUint32(b[0x1F4:], uint32(len(s.payload)+15)/16) // syssize
	le.PutUint16(b[0x1FE:], 0xAA55)
	b[0x200], b[0x201] = 0xEB, 0x6A
	copy(b[0x202:], "HdrS")
	le.PutUint16(b[0x206:], s.version)
	b[0x211] = 0x01 // LOADED_HIGH
	le.PutUint32(b[0x214:], 0x100000)
	le.PutUint32(b[0x22C:], s.initrdAddrMax)
	le.PutUint32(b[0x230:], s.kernelAlign)
	b[0x234] = s.relocatable
	le.PutUint16(b[0x236:], s.xloadflags)
	le.PutUint32(b[0x238:], s.cmdlineSize)
	le.PutUint32(b[0x248:], 0x3AB) // payload_offset
	le.PutUint32(b[0x24C:], 0x456) // payload_length
	le.PutUint64(b[0x258:], s.prefAddress)
	le.PutUint32(b[0x260:], s.initSize)
	le.PutUint32(b[0x268:], 0x1234) // kernel_info_offset
	return b
}

func parse(b []byte) (*Header, error) {
	return ParseHeader(bytes.NewReader(b), int64(len(b)))
}

func TestParseHeader_Valid_ReadsFields(t *testing.T) {
	s := defaultSynth()
	h, err := parse(s.bytes())
	if err != nil {
		t.Fatal(err)
	}
	got := []struct {
		name      string
		got, want uint64
	}{
		{"setup_sects", uint64(h.SetupSects), 1},
		{"boot_flag", uint64(h.BootFlag), 0xAA55},
		{"version", uint64(h.Version), 0x020F},
		{"loadflags", uint64(h.Loadflags), LoadedHigh},
		{"code32_start", uint64(h.Code32Start), 0x100000},
		{"initrd_addr_max", uint64(h.InitrdAddrMax), 0x7fffffff},
		{"kernel_alignment", uint64(h.KernelAlignment), 0x200000},
		{"xloadflags", uint64(h.Xloadflags), XLFKernel64},
		{"cmdline_size", uint64(h.CmdlineSize), 2048},
		{"payload_offset", uint64(h.PayloadOffset), 0x3AB},
		{"payload_length", uint64(h.PayloadLength), 0x456},
		{"pref_address", uint64(h.PrefAddress), 0x100000},
		{"init_size", uint64(h.InitSize), 0x20000},
		{"kernel_info_offset", uint64(h.KernelInfoOffset), 0x1234},
		{"KernelOffset", uint64(h.KernelOffset), 1024},
		{"KernelSize", uint64(h.KernelSize), 0x1000},
	}
	for _, g := range got {
		if g.got != g.want {
			t.Errorf("%s = %#x, want %#x", g.name, g.got, g.want)
		}
	}
	if len(h.setup) != 0x26C-0x1F1 {
		t.Errorf("setup header copy is %#x bytes, want %#x", len(h.setup), 0x26C-0x1F1)
	}
}

func TestParseHeader_SetupSectsZero_MeansFour(t *testing.T) {
	s := defaultSynth()
	s.setupSects = 0
	h, err := parse(s.bytes())
	if err != nil {
		t.Fatal(err)
	}
	if h.KernelOffset != 5*512 || h.KernelSize != int64(len(s.payload)) {
		t.Errorf("kernel at %#x+%#x, want %#x+%#x", h.KernelOffset, h.KernelSize, 5*512, len(s.payload))
	}
}

func TestParseHeader_Protocol214_NoKernelInfoOffset(t *testing.T) {
	s := defaultSynth()
	s.version = 0x020E
	h, err := parse(s.bytes())
	if err != nil {
		t.Fatal(err)
	}
	if h.KernelInfoOffset != 0 {
		t.Errorf("kernel_info_offset = %#x below 2.15, want 0", h.KernelInfoOffset)
	}
}

func TestParseHeader_Errors(t *testing.T) {
	valid := defaultSynth().bytes()
	patch := func(off int, v ...byte) []byte {
		b := bytes.Clone(valid)
		copy(b[off:], v)
		return b
	}
	tests := []struct {
		name string
		file []byte
		want error
	}{
		{"empty", nil, ErrNotBzImage},
		{"short file", valid[:0x200], ErrNotBzImage},
		{"wrong boot_flag", patch(0x1FE, 0x55, 0xAB), ErrNotBzImage},
		{"no HdrS", patch(0x202, 'H', 'd', 'r', 'Z'), ErrNotBzImage},
		{"version 2.11", patch(0x206, 0x0B, 0x02), ErrProtocolTooOld},
		{"version 1.0", patch(0x206, 0x00, 0x01), ErrProtocolTooOld},
		{"no XLF_KERNEL_64", patch(0x236, 0x02, 0x00), ErrNot64Bit},
		{"setup_sects past EOF", patch(0x1F1, 200), ErrNotBzImage},
		{"payload cut off", valid[:len(valid)-0x100], ErrNotBzImage},
		{"setup only", valid[:1024], ErrNotBzImage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := parse(tt.file)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseHeader = %v, %v; want %v", h, err, tt.want)
			}
		})
	}
}

func TestParseHeader_OldVersion_ProtocolErrorNamesIt(t *testing.T) {
	s := defaultSynth()
	s.version = 0x020B
	_, err := parse(s.bytes())
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.Version != 0x020B {
		t.Fatalf("err = %v, want *ProtocolError{0x20b}", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "2.11") || !strings.Contains(msg, "2.12") {
		t.Errorf("message %q does not name both versions", msg)
	}
}

func TestParseHeader_NoMagic_SaysWhatToDo(t *testing.T) {
	_, err := parse(make([]byte, 4096))
	if err == nil || !strings.Contains(err.Error(), "/boot/vmlinuz") {
		t.Errorf("err = %v, want advice naming /boot/vmlinuz-*", err)
	}
}

type failingReader struct{ err error }

func (r failingReader) ReadAt([]byte, int64) (int, error) { return 0, r.err }

func TestParseHeader_ReadError_Wrapped(t *testing.T) {
	boom := errors.New("disk on fire")
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"I/O error", boom, boom},
		{"EOF before size", io.EOF, ErrNotBzImage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseHeader(failingReader{tt.err}, 1<<20)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}
