package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/internal/microguest"
	"github.com/vmm-dev/vmm/vmm"
	"github.com/vmm-dev/vmm/vmm/doctor"
	"github.com/vmm-dev/vmm/vmtest"
)

// cpuidOffered boots the cpuid guest with --compat=profile and returns the
// registers it printed.
func cpuidOffered(t *testing.T, profile string) map[string]uint64 {
	t.Helper()
	vm := vmtest.Start(t, vmtest.Config{
		Kernel: microguest.BuildT(t, "cpuid"), Memory: "32M",
		Args: []string{"--compat=" + profile},
	})
	regs := map[string]uint64{}
	for _, name := range []string{"cpuid.1.ecx", "cpuid.7.ebx", "cpuid.7.ecx", "cpuid.d.eax", "cpuid.80000001.edx"} {
		m := vm.Expect(`(?m)^`+name+`=0x([0-9a-f]+)\r?$`, 5*time.Second)
		v, err := strconv.ParseUint(m[1], 16, 32)
		if err != nil {
			t.Fatal(err)
		}
		regs[name] = v
	}
	if code := vm.Wait(5 * time.Second); code != 0 {
		t.Fatalf("cpuid guest exited %d", code)
	}
	return regs
}

// TestCompat_SoftwareKVM_HidesFeatures checks what a guest sees under the
// software-kvm profile. Every KVM honours the table for the bits it reports
// as supported (CX16 in leaf 1, all of leaf 0x80000001); a KVM that emulates
// in software (kvm_pvm) shows the host's value for the other bits of leaves
// 1 and 7, which is why the profile also edits the command line. So the rest
// is asserted only on KVMs that honour the whole table.
func TestCompat_SoftwareKVM_HidesFeatures(t *testing.T) {
	vmtest.RequireKVM(t)
	regs := cpuidOffered(t, "software-kvm")
	type feature struct {
		reg  string
		bit  uint
		name string
	}
	always := []feature{{"cpuid.1.ecx", 13, "cx16"}, {"cpuid.80000001.edx", 27, "rdtscp"}}
	wholeTable := []feature{
		{"cpuid.1.ecx", 26, "xsave"},
		{"cpuid.1.ecx", 17, "pcid"},
		{"cpuid.7.ebx", 0, "fsgsbase"},
		{"cpuid.7.ebx", 7, "smep"},
		{"cpuid.7.ebx", 10, "invpcid"},
		{"cpuid.7.ebx", 20, "smap"},
		{"cpuid.7.ecx", 2, "umip"},
		{"cpuid.7.ecx", 3, "pku"},
		{"cpuid.7.ecx", 22, "rdpid"},
	}
	check := always
	if doctor.SoftwareKVM() {
		t.Logf("kvm_pvm: leaves 1 and 7 show the host's bits beyond KVM's supported set; checking %d table-controlled features", len(always))
	} else {
		check = append(check, wholeTable...)
		if regs["cpuid.d.eax"] != 0 {
			t.Errorf("XSAVE leaf 0xD still describes state: eax=%#x", regs["cpuid.d.eax"])
		}
	}
	for _, c := range check {
		if regs[c.reg]&(1<<c.bit) != 0 {
			t.Errorf("%s (%s bit %d) still offered under --compat=software-kvm", c.name, c.reg, c.bit)
		}
	}
}

// TestCompat_SoftwareKVM_ExtendsCmdline checks that the guest receives the
// profile's kernel arguments after the user's own.
func TestCompat_SoftwareKVM_ExtendsCmdline(t *testing.T) {
	vmtest.RequireKVM(t)
	vm := vmtest.Start(t, vmtest.Config{
		Kernel: microguest.BuildT(t, "bootinfo"), Memory: "32M", Cmdline: "console=ttyS0 nopku",
		Args: []string{"--compat=software-kvm"},
	})
	m := vm.Expect(`cmdline: \[([^\]]*)\]`, 5*time.Second)
	want := vmm.SoftwareKVMProfile().AppendCmdline("console=ttyS0 nopku")
	if m[1] != want {
		t.Fatalf("guest cmdline %q, want %q", m[1], want)
	}
	if strings.Count(m[1], "nopku") != 1 {
		t.Errorf("nopku repeated: %q", m[1])
	}
	vm.Wait(5 * time.Second)
}

// TestCompat_Off_PassesHostFeatures checks the other side: with the profile
// off, the guest gets KVM's supported CPUID, which on any x86-64 host KVM
// offers CMPXCHG16B.
func TestCompat_Off_PassesHostFeatures(t *testing.T) {
	vmtest.RequireKVM(t)
	regs := cpuidOffered(t, "off")
	if regs["cpuid.1.ecx"]&(1<<13) == 0 {
		t.Errorf("cx16 hidden with --compat=off: cpuid.1.ecx=%#x", regs["cpuid.1.ecx"])
	}
}
