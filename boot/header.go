package boot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// File offsets of the setup header fields (Linux Documentation/arch/x86/
// boot.rst, "The Real-Mode Kernel Header"). The same offsets hold in the
// zero page, which starts with a copy of the first 0x290 bytes' layout.
const (
	offSetupSects          = 0x1F1 // setup_sects, 1 byte
	offRootFlags           = 0x1F2 // root_flags, 2
	offSyssize             = 0x1F4 // syssize, 4 (2.04+)
	offRAMSize             = 0x1F8 // ram_size, 2 (obsolete)
	offVidMode             = 0x1FA // vid_mode, 2
	offRootDev             = 0x1FC // root_dev, 2
	offBootFlag            = 0x1FE // boot_flag, 2
	offJump                = 0x200 // jump, 2
	offHeader              = 0x202 // header, 4: "HdrS"
	offVersion             = 0x206 // version, 2
	offRealmodeSwtch       = 0x208 // realmode_swtch, 4
	offStartSysSeg         = 0x20C // start_sys_seg, 2
	offKernelVersion       = 0x20E // kernel_version, 2
	offTypeOfLoader        = 0x210 // type_of_loader, 1
	offLoadflags           = 0x211 // loadflags, 1
	offSetupMoveSize       = 0x212 // setup_move_size, 2
	offCode32Start         = 0x214 // code32_start, 4
	offRamdiskImage        = 0x218 // ramdisk_image, 4
	offRamdiskSize         = 0x21C // ramdisk_size, 4
	offBootsectKludge      = 0x220 // bootsect_kludge, 4
	offHeapEndPtr          = 0x224 // heap_end_ptr, 2
	offExtLoaderVer        = 0x226 // ext_loader_ver, 1
	offExtLoaderType       = 0x227 // ext_loader_type, 1
	offCmdLinePtr          = 0x228 // cmd_line_ptr, 4
	offInitrdAddrMax       = 0x22C // initrd_addr_max, 4
	offKernelAlignment     = 0x230 // kernel_alignment, 4
	offRelocatableKernel   = 0x234 // relocatable_kernel, 1
	offMinAlignment        = 0x235 // min_alignment, 1
	offXloadflags          = 0x236 // xloadflags, 2 (2.12+)
	offCmdlineSize         = 0x238 // cmdline_size, 4
	offHardwareSubarch     = 0x23C // hardware_subarch, 4
	offHardwareSubarchData = 0x240 // hardware_subarch_data, 8
	offPayloadOffset       = 0x248 // payload_offset, 4
	offPayloadLength       = 0x24C // payload_length, 4
	offSetupData           = 0x250 // setup_data, 8
	offPrefAddress         = 0x258 // pref_address, 8
	offInitSize            = 0x260 // init_size, 4
	offHandoverOffset      = 0x264 // handover_offset, 4
	offKernelInfoOffset    = 0x268 // kernel_info_offset, 4 (2.15+)
	setupHeaderEnd215      = 0x26C // end of the 2.15 header
)

// headerWindow is how much of the file ParseHeader reads: through the end of
// boot_params' setup_header slot (0x1F1..0x290), past every field above.
const headerWindow = 0x290

// Header field values.
const (
	BootFlagMagic  = 0xAA55
	HeaderMagic    = 0x53726448 // "HdrS" read little-endian
	sectorSize     = 512
	defaultSetupSS = 4 // setup_sects 0 means 4 (boot.rst)

	// MinProtocolVersion is 2.12: the version that added xloadflags, and
	// with it XLF_KERNEL_64, the only way a kernel says it has the 64-bit
	// entry at +0x200 that this loader jumps to (Linux 3.8+).
	MinProtocolVersion = 0x020C

	// loadflags bits.
	LoadedHigh   = 1 << 0 // LOADED_HIGH: protected-mode code at 0x100000
	KASLRFlag    = 1 << 1 // KASLR_FLAG (set by the kernel)
	QuietFlag    = 1 << 5 // QUIET_FLAG
	KeepSegments = 1 << 6 // KEEP_SEGMENTS (32-bit entry only)
	CanUseHeap   = 1 << 7 // CAN_USE_HEAP

	// xloadflags bits.
	XLFKernel64           = 1 << 0 // XLF_KERNEL_64: 64-bit entry at +0x200
	XLFCanBeLoadedAbove4G = 1 << 1 // XLF_CAN_BE_LOADED_ABOVE_4G
	XLFEFIHandover32      = 1 << 2 // XLF_EFI_HANDOVER_32
	XLFEFIHandover64      = 1 << 3 // XLF_EFI_HANDOVER_64
	XLFEFIKexec           = 1 << 4 // XLF_EFI_KEXEC
	XLF5Level             = 1 << 5 // XLF_5LEVEL
	XLF5LevelEnabled      = 1 << 6 // XLF_5LEVEL_ENABLED
	protocolKernelInfo    = 0x020F // kernel_info_offset exists from 2.15
	syssizeParagraph      = 16     // syssize counts 16-byte units
	syssizeRoundingSlack  = syssizeParagraph - 1
	entry64Offset         = 0x200 // 64-bit entry: payload start + 0x200
)

// Header is a bzImage's setup header, fields named as in boot.rst, plus where
// the protected-mode kernel (the part loaded at 0x100000) sits in the file.
type Header struct {
	SetupSects          uint8 // as stored; 0 means 4
	RootFlags           uint16
	Syssize             uint32
	VidMode             uint16
	RootDev             uint16
	BootFlag            uint16
	Jump                uint16
	Version             uint16
	KernelVersion       uint16
	TypeOfLoader        uint8
	Loadflags           uint8
	Code32Start         uint32
	InitrdAddrMax       uint32
	KernelAlignment     uint32
	RelocatableKernel   uint8
	MinAlignment        uint8
	Xloadflags          uint16
	CmdlineSize         uint32
	HardwareSubarch     uint32
	HardwareSubarchData uint64
	PayloadOffset       uint32
	PayloadLength       uint32
	SetupData           uint64
	PrefAddress         uint64
	InitSize            uint32
	HandoverOffset      uint32
	KernelInfoOffset    uint32 // 0 below protocol 2.15

	// KernelOffset and KernelSize locate the protected-mode kernel in the
	// file: from (setup_sects+1)*512 to the end of the file.
	KernelOffset int64
	KernelSize   int64

	// setup is the file's setup header bytes from 0x1F1 to its end
	// (0x202 + the byte at 0x201), copied verbatim into the zero page.
	setup []byte
}

// ParseHeader reads and checks the setup header of the bzImage in r, which
// is size bytes long. It only reads; it never trusts a field without a
// bounds check against size.
func ParseHeader(r io.ReaderAt, size int64) (*Header, error) {
	if size < headerWindow {
		return nil, &FormatError{Reason: fmt.Sprintf("file is %d bytes, too short for a setup header", size)}
	}
	b := make([]byte, headerWindow)
	if _, err := r.ReadAt(b, 0); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, &FormatError{Reason: "file ends inside the setup header"}
		}
		return nil, fmt.Errorf("read setup header: %w", err)
	}
	le := binary.LittleEndian
	if v := le.Uint16(b[offBootFlag:]); v != BootFlagMagic {
		return nil, &FormatError{Reason: fmt.Sprintf("boot_flag at 0x1fe is %#04x, want 0xaa55", v)}
	}
	if le.Uint32(b[offHeader:]) != HeaderMagic {
		return nil, &FormatError{Reason: "no HdrS magic at 0x202"}
	}
	h := decodeHeader(b)
	if h.Version < MinProtocolVersion {
		return nil, &ProtocolError{Version: h.Version}
	}
	if h.Xloadflags&XLFKernel64 == 0 {
		return nil, ErrNot64Bit
	}
	ss := int64(h.SetupSects)
	if ss == 0 {
		ss = defaultSetupSS
	}
	h.KernelOffset = (ss + 1) * sectorSize
	if h.KernelOffset >= size {
		return nil, &FormatError{Reason: fmt.Sprintf(
			"setup_sects %d puts the kernel at %#x, past the end of the %d-byte file: is it truncated?",
			h.SetupSects, h.KernelOffset, size)}
	}
	h.KernelSize = size - h.KernelOffset
	// syssize (2.04+) is the protected-mode size in 16-byte units, rounded
	// up by the build: a shorter file was cut off, e.g. by a failed copy.
	if want := int64(h.Syssize) * syssizeParagraph; want > h.KernelSize+syssizeRoundingSlack {
		return nil, &FormatError{Reason: fmt.Sprintf(
			"syssize says the kernel is %d bytes but the file holds %d: is it truncated?", want, h.KernelSize)}
	}
	// The header ends at 0x202 + the jump's displacement byte (boot.rst);
	// never copy past boot_params' setup_header slot.
	end := min(offHeader+int(b[offJump+1]), headerWindow)
	h.setup = b[offSetupSects:end]
	return h, nil
}

// decodeHeader reads every field from the first headerWindow bytes.
func decodeHeader(b []byte) *Header {
	le := binary.LittleEndian
	h := &Header{
		SetupSects:          b[offSetupSects],
		RootFlags:           le.Uint16(b[offRootFlags:]),
		Syssize:             le.Uint32(b[offSyssize:]),
		VidMode:             le.Uint16(b[offVidMode:]),
		RootDev:             le.Uint16(b[offRootDev:]),
		BootFlag:            le.Uint16(b[offBootFlag:]),
		Jump:                le.Uint16(b[offJump:]),
		Version:             le.Uint16(b[offVersion:]),
		KernelVersion:       le.Uint16(b[offKernelVersion:]),
		TypeOfLoader:        b[offTypeOfLoader],
		Loadflags:           b[offLoadflags],
		Code32Start:         le.Uint32(b[offCode32Start:]),
		InitrdAddrMax:       le.Uint32(b[offInitrdAddrMax:]),
		KernelAlignment:     le.Uint32(b[offKernelAlignment:]),
		RelocatableKernel:   b[offRelocatableKernel],
		MinAlignment:        b[offMinAlignment],
		Xloadflags:          le.Uint16(b[offXloadflags:]),
		CmdlineSize:         le.Uint32(b[offCmdlineSize:]),
		HardwareSubarch:     le.Uint32(b[offHardwareSubarch:]),
		HardwareSubarchData: le.Uint64(b[offHardwareSubarchData:]),
		PayloadOffset:       le.Uint32(b[offPayloadOffset:]),
		PayloadLength:       le.Uint32(b[offPayloadLength:]),
		SetupData:           le.Uint64(b[offSetupData:]),
		PrefAddress:         le.Uint64(b[offPrefAddress:]),
		InitSize:            le.Uint32(b[offInitSize:]),
		HandoverOffset:      le.Uint32(b[offHandoverOffset:]),
	}
	if h.Version >= protocolKernelInfo {
		h.KernelInfoOffset = le.Uint32(b[offKernelInfoOffset:])
	}
	return h
}

// Relocatable reports relocatable_kernel != 0.
func (h *Header) Relocatable() bool { return h.RelocatableKernel != 0 }
