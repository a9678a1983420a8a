package policy

import (
	"encoding/binary"
	"strings"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

func TestProgram_Assembles(t *testing.T) {
	prog, err := Program()
	if err != nil {
		t.Fatal(err)
	}
	if len(prog) == 0 || Count() != len(allowed)+3 {
		t.Errorf("%d instructions, %d calls", len(prog), Count())
	}
	for _, name := range []string{"openat", "execve", "ptrace", "mount", "kexec_load", "seccomp"} {
		for _, a := range allowed {
			if strings.EqualFold(a, name) {
				t.Errorf("%s is allowed", name)
			}
		}
	}
}

// Program looks the allowed calls up by binary search; it must decide
// every call as the two policies assembled straight by go-seccomp-bpf
// (compared one by one) do: for every call number of each architecture,
// with the arguments the conditions look at.
func TestProgram_DecidesAsThePoliciesDo(t *testing.T) {
	prog, err := Program()
	if err != nil {
		t.Fatal(err)
	}
	first, err := assemble(IoctlPolicy())
	if err != nil {
		t.Fatal(err)
	}
	second, err := assemble(Policy())
	if err != nil {
		t.Fatal(err)
	}
	straight, err := chain(first, second)
	if err != nil {
		t.Fatal(err)
	}
	got, want := newVM(t, prog), newVM(t, straight)

	var args [][6]uint64
	for _, a := range []uint64{0, unix.AF_UNIX, unix.AF_INET, unix.CLONE_THREAD | unix.CLONE_VM, unix.CLONE_VM, 1 << 32} {
		args = append(args, [6]uint64{a})
	}
	for _, io := range ioctls {
		args = append(args, [6]uint64{1: uint64(io.Request)}, [6]uint64{1: uint64(io.Request) | 1<<32})
	}
	args = append(args, [6]uint64{1: unix.TUNSETIFF})
	var nrs []uint32
	for nr := uint32(0); nr < 600; nr++ {
		nrs = append(nrs, nr, nr|0x40000000)
	}
	nrs = append(nrs, 0xffffffff, 0x7fffffff)
	const (
		auditX86_64  = 0xc000003e
		auditI386    = 0x40000003
		auditAarch64 = 0xc00000b7
	)
	decided := map[uint32]int{}
	for _, arch := range []uint32{auditX86_64, auditI386, auditAarch64} {
		for _, nr := range nrs {
			for _, a := range args {
				in := seccompData(nr, arch, a)
				g, err := got.Run(in)
				if err != nil {
					t.Fatal(err)
				}
				w, err := want.Run(in)
				if err != nil {
					t.Fatal(err)
				}
				if g != w {
					t.Fatalf("arch %#x call %d args %#x: Program returns %#x, the policies %#x", arch, nr, a, g, w)
				}
				decided[uint32(g)]++
			}
		}
	}
	if decided[unix.SECCOMP_RET_ALLOW] == 0 || len(decided) < 3 {
		t.Errorf("actions seen: %v; want ALLOW, EPERM and ENOSYS at least", decided)
	}
}

// newVM loads a seccomp program into x/net/bpf's interpreter.
func newVM(t *testing.T, prog []unix.SockFilter) *bpf.VM {
	t.Helper()
	raw := make([]bpf.RawInstruction, len(prog))
	for i, f := range prog {
		raw[i] = bpf.RawInstruction{Op: f.Code, Jt: f.Jt, Jf: f.Jf, K: f.K}
	}
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("the program has instructions x/net/bpf cannot disassemble")
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatal(err)
	}
	return vm
}

// seccompData is struct seccomp_data as the interpreter reads it: its
// loads are big-endian where the kernel's are native, so each 32-bit word
// is written big-endian, an argument's low word first as it lies in
// little-endian memory.
func seccompData(nr, arch uint32, args [6]uint64) []byte {
	b := make([]byte, 64)
	binary.BigEndian.PutUint32(b[0:], nr)
	binary.BigEndian.PutUint32(b[4:], arch)
	for i, a := range args {
		binary.BigEndian.PutUint32(b[16+8*i:], uint32(a))
		binary.BigEndian.PutUint32(b[20+8*i:], uint32(a>>32))
	}
	return b
}

// The kernel learns which calls a filter always allows by running it with
// only the call number and architecture known, following loads of those
// two, K-form JEQ, JGE, JGT and JSET, JA and RET K, and giving up on
// anything else: then the call runs the filter every time. The lookup must
// keep to those, or every allowed call would pay for the filter.
func TestLookup_UsesOnlyWhatTheKernelsCacheFollows(t *testing.T) {
	prog, err := lookup(allowed)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range prog {
		switch f.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			if f.K != 0 && f.K != 4 {
				t.Errorf("instruction %d loads seccomp_data at %d: not the call number or architecture", i, f.K)
			}
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K, unix.BPF_RET | unix.BPF_K:
		default:
			t.Errorf("instruction %d has code %#x, which the kernel's cache does not follow", i, f.Code)
		}
	}
}
