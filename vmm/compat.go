package vmm

import (
	"fmt"
	"strings"

	"github.com/vmm-dev/vmm/kvm"
)

// A compatibility profile adapts what the guest sees to a host that cannot
// run some of what a stock Linux kernel does: CPUID bits hidden so the
// kernel never picks those code paths, command-line arguments that keep it
// off the rest, and instructions the VMM performs itself when KVM fails on
// them. docs/software-kvm.md explains every entry; a test keeps the two in
// step.
type Profile struct {
	Name     string
	CPUID    []CPUIDMask
	Cmdline  []CmdlineArg
	Fallback bool // perform INT3/IRETQ/CLAC/STAC in the VMM on emulation failures
	// HostDecompress boots the kernel proper, decompressed on the host
	// (Config.Vmlinux: vmm-images unpacks the bzImage's payload once and
	// caches it), skipping the guest's own decompressor.
	HostDecompress bool
	// DropLostTicks turns off the in-kernel PIT's catch-up: a guest that
	// runs slower than its timer would otherwise spend all its time in
	// ticks it missed.
	DropLostTicks bool
}

// CPUIDMask clears Bits of one register of a CPUID leaf (every subleaf).
type CPUIDMask struct {
	Leaf    uint32
	Reg     CPUIDReg
	Bits    uint32
	Feature string // the name Linux's /proc/cpuinfo uses
	Why     string
}

// CPUIDReg names a CPUID output register.
type CPUIDReg int

const (
	EAX CPUIDReg = iota
	EBX
	ECX
	EDX
	AllRegs // the whole leaf is zeroed
)

func (r CPUIDReg) String() string {
	return [...]string{"EAX", "EBX", "ECX", "EDX", "all"}[r]
}

// CmdlineArg is one kernel command-line argument a profile appends.
type CmdlineArg struct {
	Arg string
	Why string
}

// CPUID leaves.
const (
	leafFeatures    = 0x1
	leafExtFeatures = 0x7
	leafXSAVE       = 0xD
	leafExtInfo     = 0x8000_0001
	// KVM's paravirtual feature bits (Documentation/virt/kvm/x86/cpuid.rst).
	leafKVMFeatures = 0x4000_0001
)

func bit(n uint) uint32 { return 1 << n }

// SoftwareKVMProfile is for KVM implementations that emulate guests in
// software (kvm_pvm): their instruction emulator lacks XSAVE/XRSTOR,
// CMPXCHG16B, CLAC/STAC and long-mode INT3/IRETQ, and every extension newer
// than what it knows.
func SoftwareKVMProfile() Profile {
	const noEmu = "KVM's software emulator cannot execute it"
	// On kvm_pvm the table decides only the bits KVM itself reports as
	// supported (in leaf 1 ECX: x2APIC, TSC deadline, CX16); the guest
	// sees the host's value of every other bit of leaves 1 and 7. The masks
	// below are exact on KVMs that honour the table; on kvm_pvm the
	// command line below does the real work.
	return Profile{
		Name: "software-kvm",
		CPUID: []CPUIDMask{
			{leafFeatures, ECX, bit(26), "xsave", "XSAVE/XRSTOR: " + noEmu + "; Linux saves FPU state with them whenever CPUID offers them"},
			{leafFeatures, ECX, bit(27), "osxsave", "mirrors CR4.OSXSAVE, meaningless without XSAVE"},
			{leafFeatures, ECX, bit(28), "avx", "AVX state needs XSAVE; the emulator has no VEX instructions"},
			{leafFeatures, ECX, bit(12), "fma", "VEX-encoded; needs AVX"},
			{leafFeatures, ECX, bit(29), "f16c", "VEX-encoded; needs AVX"},
			{leafFeatures, ECX, bit(13), "cx16", "CMPXCHG16B: " + noEmu + "; Linux uses it for this_cpu_cmpxchg_double (SLUB) when offered"},
			{leafFeatures, ECX, bit(17), "pcid", "PCID changes CR3 and TLB semantics the emulator does not model; Linux falls back to full flushes"},
			{leafFeatures, ECX, bit(30), "rdrand", "RDRAND: " + noEmu},
			{leafFeatures, ECX, bit(25), "aes", "AES-NI: " + noEmu + " (crypto self-tests would run it)"},
			{leafFeatures, ECX, bit(1), "pclmulqdq", "PCLMULQDQ: " + noEmu + " (crc32c/ghash drivers would run it)"},
			{leafFeatures, ECX, bit(22), "movbe", "MOVBE: " + noEmu},
			{leafFeatures, ECX, bit(23), "popcnt", "POPCNT: " + noEmu + "; Linux patches it into hweight when offered"},
			{leafFeatures, ECX, bit(9) | bit(19) | bit(20), "ssse3 sse4_1 sse4_2", "SSSE3/SSE4 instructions (crc32, pshufb): " + noEmu},
			{leafExtFeatures, EBX, bit(0), "fsgsbase", "RDFSBASE/WRFSBASE: " + noEmu + "; Linux uses them on every context switch when offered"},
			{leafExtFeatures, EBX, bit(3) | bit(8), "bmi1 bmi2", "VEX-encoded bit-manipulation instructions: " + noEmu},
			{leafExtFeatures, EBX, bit(5), "avx2", "needs AVX"},
			{leafExtFeatures, EBX, bit(7), "smep", "SMEP: enforced by page-walk rules the emulator does not model"},
			{leafExtFeatures, EBX, bit(10), "invpcid", "INVPCID: " + noEmu},
			{leafExtFeatures, EBX, bit(4) | bit(11), "hle rtm", "TSX: " + noEmu},
			{leafExtFeatures, EBX, bit(18), "rdseed", "RDSEED: " + noEmu},
			{leafExtFeatures, EBX, bit(19), "adx", "ADCX/ADOX: " + noEmu},
			{leafExtFeatures, EBX, bit(20), "smap", "SMAP: Linux would run CLAC/STAC around every user access, and " + noEmu},
			{leafExtFeatures, EBX, bit(16) | bit(17) | bit(21) | bit(26) | bit(27) | bit(28) | bit(30) | bit(31), "avx512*", "AVX-512 needs XSAVE"},
			{leafExtFeatures, EBX, bit(23) | bit(24), "clflushopt clwb", "cache-line write-back instructions: " + noEmu},
			{leafExtFeatures, EBX, bit(29), "sha_ni", "SHA extensions: " + noEmu},
			{leafExtFeatures, ECX, bit(2), "umip", "UMIP: the emulator does not enforce it"},
			{leafExtFeatures, ECX, bit(3) | bit(4), "pku ospke", "protection keys (RDPKRU/WRPKRU): " + noEmu + "; PKRU is XSAVE state"},
			{leafExtFeatures, ECX, bit(22), "rdpid", "RDPID: " + noEmu + "; Linux reads the CPU number with it when offered"},
			{leafExtFeatures, ECX, bit(16), "la57", "5-level paging: not modelled by the emulator"},
			{leafExtFeatures, ECX, bit(1) | bit(6) | bit(8) | bit(9) | bit(10) | bit(11) | bit(12) | bit(14), "avx512vbmi gfni vaes vpclmulqdq ...", "VEX/EVEX-encoded extensions: need AVX"},
			{leafExtFeatures, EDX, bit(29), "arch_capabilities", "an MSR the emulated CPU does not have (QEMU hides it for the same reason)"},
			{leafXSAVE, AllRegs, 0, "xsave leaf", "the XSAVE state enumeration must vanish with XSAVE"},
			{leafExtInfo, EDX, bit(27), "rdtscp", "RDTSCP: " + noEmu + "; Linux's vgetcpu and sched clock use it when offered"},
			{leafExtInfo, ECX, bit(5), "abm/lzcnt", "LZCNT: " + noEmu},
			{leafKVMFeatures, EAX, bit(7) | bit(11) | bit(13), "kvm-pv-unhalt kvm-pv-ipi kvm-pv-sched-yield",
				"paravirtual spinlock kicks, IPIs and yields are VMCALL hypercalls, which never complete on kvm_pvm: the vCPU runs the VMCALL again and again"},
		},
		Cmdline: []CmdlineArg{
			{"noxsave", "kvm_pvm passes the host's XSAVE bit through whatever the CPUID table says, so only this keeps Linux off XSAVE/XRSTOR (and AVX)"},
			{"nopku", "never touch protection keys (PKRU is XSAVE state); the host's PKU bit shows through"},
			{"nofsgsbase", "the host's FSGSBASE bit shows through; keep Linux off RDFSBASE/WRFSBASE"},
			{"nopcid", "keep CR3 writes plain: the host's PCID bit shows through"},
			{"noinvpcid", "INVPCID: " + noEmu + "; the host's bit shows through"},
			{"clearcpuid=141,151,295,308,514,534", "X86_FEATURE numbers (6.1's cpufeatures.h: word*32+bit; numbers work even without CONFIG_X86_FEATURE_NAMES) of CX16 (4*32+13), POPCNT (4*32+23: alternatives patch POPCNT into hweight, and " + noEmu + "), SMEP (9*32+7), SMAP (9*32+20: otherwise every kernel entry and user access runs CLAC/STAC), UMIP (16*32+2) and RDPID (16*32+22); x86 Linux 6.1 has no nosmap/nosmep switch (those are PowerPC-only)"},
			{"mitigations=off", "speculation mitigations patch in instructions (VERW, IBPB MSR writes, retpolines) that only cost emulation time here"},
			{"tsc=reliable", "skip TSC-stability watchdog work, which the emulated clock makes slow and noisy"},
			{"no_timer_check", "the IOAPIC timer check waits on ticks that emulation delays"},
		},
		Fallback:       true,
		HostDecompress: true,
		DropLostTicks:  true,
	}
}

// maskCPUID clears the profile's bits in a CPUID table, in place.
func (p Profile) maskCPUID(entries []kvm.CPUIDEntry) {
	for i := range entries {
		e := &entries[i]
		for _, m := range p.CPUID {
			if e.Function != m.Leaf {
				continue
			}
			switch m.Reg {
			case EAX:
				e.EAX &^= m.Bits
			case EBX:
				e.EBX &^= m.Bits
			case ECX:
				e.ECX &^= m.Bits
			case EDX:
				e.EDX &^= m.Bits
			case AllRegs:
				e.EAX, e.EBX, e.ECX, e.EDX = 0, 0, 0, 0
			}
		}
	}
}

// AppendCmdline adds the profile's arguments that cmdline lacks.
func (p Profile) AppendCmdline(cmdline string) string {
	have := map[string]bool{}
	for _, f := range strings.Fields(cmdline) {
		have[f] = true
	}
	out := cmdline
	for _, a := range p.Cmdline {
		if !have[a.Arg] {
			out = strings.TrimSpace(out + " " + a.Arg)
		}
	}
	return out
}

func (p Profile) String() string {
	if p.Name == "" {
		return "none"
	}
	return fmt.Sprintf("%s (%d CPUID masks, %d command-line arguments, fallback emulator %v)",
		p.Name, len(p.CPUID), len(p.Cmdline), p.Fallback)
}
