package vmlinux

import (
	"bytes"
	"debug/elf"
	"fmt"

	"github.com/vmm-dev/vmm/boot"
)

// startKernelMap is __START_KERNEL_map (arch/x86/include/asm/page_64_types.h):
// the kernel's virtual addresses are its physical ones plus this.
const startKernelMap = 0xFFFF_FFFF_8000_0000

// Parse reads the layout of image, an ELF64 x86-64 executable: its PT_LOAD
// segments and its entry point, made physical. The layout has passed
// boot's structural check (Vmlinux.Check with boot.NoRAMLimit); boot.Load
// checks it against the guest's RAM. Image reads from image.
func Parse(image []byte) (*boot.Vmlinux, error) {
	f, err := elf.NewFile(bytes.NewReader(image))
	if err != nil {
		return nil, &boot.VmlinuxError{Reason: fmt.Sprintf("not an ELF file (%v)", err)}
	}
	switch {
	case f.Class != elf.ELFCLASS64:
		return nil, &boot.VmlinuxError{Reason: fmt.Sprintf("ELF class is %v, want ELFCLASS64", f.Class)}
	case f.Data != elf.ELFDATA2LSB:
		return nil, &boot.VmlinuxError{Reason: fmt.Sprintf("ELF data encoding is %v, want ELFDATA2LSB", f.Data)}
	case f.Machine != elf.EM_X86_64:
		return nil, &boot.VmlinuxError{Reason: fmt.Sprintf("ELF machine is %v, want EM_X86_64", f.Machine)}
	case f.Type != elf.ET_EXEC:
		return nil, &boot.VmlinuxError{Reason: fmt.Sprintf("ELF type is %v, want ET_EXEC", f.Type)}
	}
	v := &boot.Vmlinux{Image: bytes.NewReader(image), ImageSize: int64(len(image)), Entry: f.Entry}
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD || p.Memsz == 0 {
			continue
		}
		v.Segments = append(v.Segments, boot.VmlinuxSegment{Paddr: p.Paddr, Off: p.Off, Filesz: p.Filesz, Memsz: p.Memsz})
	}
	// Linux links e_entry to phys_startup_64 (vmlinux.lds.S ENTRY), but a
	// kernel built otherwise may give the virtual startup_64.
	if v.Entry >= startKernelMap {
		v.Entry -= startKernelMap
	}
	if err := v.Check(boot.NoRAMLimit); err != nil {
		return nil, err
	}
	return v, nil
}
