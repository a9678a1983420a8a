package kvm

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// abiFact is one number both Go and C must agree on: an ioctl number, a
// struct size or a field offset. C is the C expression that computes it.
type abiFact struct {
	C  string
	Go uint64
}

func abiFacts() []abiFact {
	var (
		mr  UserspaceMemoryRegion
		rg  Regs
		seg Segment
		dt  DTable
		sr  Sregs
		fpu FPU
		ce  CPUIDEntry
		me  MSREntry
		tr  Translation
	)
	u := func(v uintptr) uint64 { return uint64(v) }
	return []abiFact{
		{"KVM_GET_API_VERSION", u(KVM_GET_API_VERSION)},
		{"KVM_CREATE_VM", u(KVM_CREATE_VM)},
		{"KVM_CHECK_EXTENSION", u(KVM_CHECK_EXTENSION)},
		{"KVM_GET_VCPU_MMAP_SIZE", u(KVM_GET_VCPU_MMAP_SIZE)},
		{"KVM_GET_SUPPORTED_CPUID", u(KVM_GET_SUPPORTED_CPUID)},
		{"KVM_CREATE_VCPU", u(KVM_CREATE_VCPU)},
		{"KVM_SET_USER_MEMORY_REGION", u(KVM_SET_USER_MEMORY_REGION)},
		{"KVM_SET_TSS_ADDR", u(KVM_SET_TSS_ADDR)},
		{"KVM_SET_IDENTITY_MAP_ADDR", u(KVM_SET_IDENTITY_MAP_ADDR)},
		{"KVM_CREATE_IRQCHIP", u(KVM_CREATE_IRQCHIP)},
		{"KVM_IRQ_LINE", u(KVM_IRQ_LINE)},
		{"KVM_CREATE_PIT2", u(KVM_CREATE_PIT2)},
		{"KVM_RUN", u(KVM_RUN)},
		{"KVM_GET_REGS", u(KVM_GET_REGS)},
		{"KVM_SET_REGS", u(KVM_SET_REGS)},
		{"KVM_GET_SREGS", u(KVM_GET_SREGS)},
		{"KVM_SET_SREGS", u(KVM_SET_SREGS)},
		{"KVM_TRANSLATE", u(KVM_TRANSLATE)},
		{"KVM_GET_MSRS", u(KVM_GET_MSRS)},
		{"KVM_SET_MSRS", u(KVM_SET_MSRS)},
		{"KVM_GET_FPU", u(KVM_GET_FPU)},
		{"KVM_SET_FPU", u(KVM_SET_FPU)},
		{"KVM_GET_LAPIC", u(KVM_GET_LAPIC)},
		{"KVM_SET_LAPIC", u(KVM_SET_LAPIC)},
		{"KVM_SET_CPUID2", u(KVM_SET_CPUID2)},
		{"KVM_REINJECT_CONTROL", u(KVM_REINJECT_CONTROL)},
		{"KVM_CAP_REINJECT_CONTROL", KVM_CAP_REINJECT_CONTROL},
		{"sizeof(struct kvm_reinject_control)", u(unsafe.Sizeof(ReinjectControl{}))},
		{"KVM_SET_GSI_ROUTING", u(KVM_SET_GSI_ROUTING)},
		{"KVM_IRQFD", u(KVM_IRQFD)},
		{"KVM_IOEVENTFD", u(KVM_IOEVENTFD)},
		{"KVM_SIGNAL_MSI", u(KVM_SIGNAL_MSI)},
		{"KVM_CAP_IRQ_ROUTING", KVM_CAP_IRQ_ROUTING},
		{"KVM_CAP_SIGNAL_MSI", KVM_CAP_SIGNAL_MSI},
		{"KVM_CAP_IRQFD", KVM_CAP_IRQFD},
		{"KVM_CAP_IOEVENTFD", KVM_CAP_IOEVENTFD},
		{"KVM_IRQ_ROUTING_IRQCHIP", KVM_IRQ_ROUTING_IRQCHIP},
		{"KVM_IRQ_ROUTING_MSI", KVM_IRQ_ROUTING_MSI},
		{"KVM_IRQCHIP_IOAPIC", KVM_IRQCHIP_IOAPIC},
		{"KVM_IOEVENTFD_FLAG_PIO", KVM_IOEVENTFD_FLAG_PIO},
		{"KVM_IOEVENTFD_FLAG_DATAMATCH", KVM_IOEVENTFD_FLAG_DATAMATCH},
		{"KVM_IOEVENTFD_FLAG_DEASSIGN", KVM_IOEVENTFD_FLAG_DEASSIGN},
		{"KVM_IRQFD_FLAG_DEASSIGN", KVM_IRQFD_FLAG_DEASSIGN},
		{"sizeof(struct kvm_irqfd)", u(unsafe.Sizeof(IRQFD{}))},
		{"sizeof(struct kvm_ioeventfd)", u(unsafe.Sizeof(IOEventFD{}))},
		{"offsetof(struct kvm_ioeventfd, fd)", u(unsafe.Offsetof(IOEventFD{}.FD))},
		{"offsetof(struct kvm_ioeventfd, flags)", u(unsafe.Offsetof(IOEventFD{}.Flags))},
		{"sizeof(struct kvm_msi)", u(unsafe.Sizeof(MSI{}))},
		{"offsetof(struct kvm_msi, devid)", u(unsafe.Offsetof(MSI{}.DevID))},
		{"sizeof(struct kvm_irq_routing)", sizeofIRQRoutingHeader},
		{"sizeof(struct kvm_irq_routing_entry)", u(unsafe.Sizeof(routingEntry{}))},
		{"offsetof(struct kvm_irq_routing_entry, u)", u(unsafe.Offsetof(routingEntry{}.U))},
		{"offsetof(struct kvm_irq_routing_entry, u.msi.data)", u(unsafe.Offsetof(routingEntry{}.U)) + 8},
		{"KVM_API_VERSION", KVM_API_VERSION},
		{"KVM_CAP_IMMEDIATE_EXIT", KVM_CAP_IMMEDIATE_EXIT},
		{"KVM_CAP_PIT2", KVM_CAP_PIT2},
		{"KVM_CAP_IRQCHIP", KVM_CAP_IRQCHIP},
		{"KVM_CAP_SET_IDENTITY_MAP_ADDR", KVM_CAP_SET_IDENTITY_MAP_ADDR},
		{"KVM_CAP_INTERNAL_ERROR_DATA", KVM_CAP_INTERNAL_ERROR_DATA},
		{"KVM_CAP_MAX_VCPUS", KVM_CAP_MAX_VCPUS},
		{"KVM_EXIT_IO", KVM_EXIT_IO},
		{"KVM_EXIT_MMIO", KVM_EXIT_MMIO},
		{"KVM_EXIT_SHUTDOWN", KVM_EXIT_SHUTDOWN},
		{"KVM_EXIT_FAIL_ENTRY", KVM_EXIT_FAIL_ENTRY},
		{"KVM_EXIT_INTERNAL_ERROR", KVM_EXIT_INTERNAL_ERROR},
		{"KVM_EXIT_SYSTEM_EVENT", KVM_EXIT_SYSTEM_EVENT},
		{"KVM_EXIT_INTR", KVM_EXIT_INTR},

		{"sizeof(struct kvm_userspace_memory_region)", u(unsafe.Sizeof(mr))},
		{"offsetof(struct kvm_userspace_memory_region, guest_phys_addr)", u(unsafe.Offsetof(mr.GuestPhysAddr))},
		{"offsetof(struct kvm_userspace_memory_region, memory_size)", u(unsafe.Offsetof(mr.MemorySize))},
		{"offsetof(struct kvm_userspace_memory_region, userspace_addr)", u(unsafe.Offsetof(mr.UserspaceAddr))},
		{"sizeof(struct kvm_regs)", u(unsafe.Sizeof(rg))},
		{"offsetof(struct kvm_regs, rsi)", u(unsafe.Offsetof(rg.RSI))},
		{"offsetof(struct kvm_regs, r8)", u(unsafe.Offsetof(rg.R8))},
		{"offsetof(struct kvm_regs, rip)", u(unsafe.Offsetof(rg.RIP))},
		{"offsetof(struct kvm_regs, rflags)", u(unsafe.Offsetof(rg.RFLAGS))},
		{"sizeof(struct kvm_segment)", u(unsafe.Sizeof(seg))},
		{"offsetof(struct kvm_segment, limit)", u(unsafe.Offsetof(seg.Limit))},
		{"offsetof(struct kvm_segment, selector)", u(unsafe.Offsetof(seg.Selector))},
		{"offsetof(struct kvm_segment, type)", u(unsafe.Offsetof(seg.Type))},
		{"offsetof(struct kvm_segment, g)", u(unsafe.Offsetof(seg.G))},
		{"offsetof(struct kvm_segment, unusable)", u(unsafe.Offsetof(seg.Unusable))},
		{"sizeof(struct kvm_dtable)", u(unsafe.Sizeof(dt))},
		{"offsetof(struct kvm_dtable, limit)", u(unsafe.Offsetof(dt.Limit))},
		{"sizeof(struct kvm_sregs)", u(unsafe.Sizeof(sr))},
		{"offsetof(struct kvm_sregs, tr)", u(unsafe.Offsetof(sr.TR))},
		{"offsetof(struct kvm_sregs, gdt)", u(unsafe.Offsetof(sr.GDT))},
		{"offsetof(struct kvm_sregs, idt)", u(unsafe.Offsetof(sr.IDT))},
		{"offsetof(struct kvm_sregs, cr0)", u(unsafe.Offsetof(sr.CR0))},
		{"offsetof(struct kvm_sregs, cr3)", u(unsafe.Offsetof(sr.CR3))},
		{"offsetof(struct kvm_sregs, efer)", u(unsafe.Offsetof(sr.EFER))},
		{"offsetof(struct kvm_sregs, apic_base)", u(unsafe.Offsetof(sr.APICBase))},
		{"offsetof(struct kvm_sregs, interrupt_bitmap)", u(unsafe.Offsetof(sr.InterruptBitmap))},
		{"sizeof(struct kvm_fpu)", u(unsafe.Sizeof(fpu))},
		{"offsetof(struct kvm_fpu, fcw)", u(unsafe.Offsetof(fpu.FCW))},
		{"offsetof(struct kvm_fpu, last_opcode)", u(unsafe.Offsetof(fpu.LastOpcode))},
		{"offsetof(struct kvm_fpu, last_ip)", u(unsafe.Offsetof(fpu.LastIP))},
		{"offsetof(struct kvm_fpu, xmm)", u(unsafe.Offsetof(fpu.XMM))},
		{"offsetof(struct kvm_fpu, mxcsr)", u(unsafe.Offsetof(fpu.MXCSR))},
		{"sizeof(struct kvm_lapic_state)", u(unsafe.Sizeof(LAPICState{}))},
		{"sizeof(struct kvm_irq_level)", u(unsafe.Sizeof(IRQLevel{}))},
		{"sizeof(struct kvm_pit_config)", u(unsafe.Sizeof(PITConfig{}))},
		{"sizeof(struct kvm_cpuid2)", u(unsafe.Sizeof(cpuid2Header{}))},
		{"sizeof(struct kvm_cpuid_entry2)", u(unsafe.Sizeof(ce))},
		{"offsetof(struct kvm_cpuid_entry2, flags)", u(unsafe.Offsetof(ce.Flags))},
		{"offsetof(struct kvm_cpuid_entry2, eax)", u(unsafe.Offsetof(ce.EAX))},
		{"offsetof(struct kvm_cpuid_entry2, edx)", u(unsafe.Offsetof(ce.EDX))},
		{"sizeof(struct kvm_msrs)", u(unsafe.Sizeof(msrsHeader{}))},
		{"sizeof(struct kvm_msr_entry)", u(unsafe.Sizeof(me))},
		{"offsetof(struct kvm_msr_entry, data)", u(unsafe.Offsetof(me.Data))},
		{"sizeof(struct kvm_translation)", u(unsafe.Sizeof(tr))},
		{"offsetof(struct kvm_translation, valid)", u(unsafe.Offsetof(tr.Valid))},

		{"offsetof(struct kvm_run, immediate_exit)", runImmediateExit},
		{"offsetof(struct kvm_run, exit_reason)", runExitReason},
		{"offsetof(struct kvm_run, io.direction)", runIODirection},
		{"offsetof(struct kvm_run, io.size)", runIOSize},
		{"offsetof(struct kvm_run, io.port)", runIOPort},
		{"offsetof(struct kvm_run, io.count)", runIOCount},
		{"offsetof(struct kvm_run, io.data_offset)", runIODataOffset},
		{"offsetof(struct kvm_run, mmio.phys_addr)", runMMIOPhysAddr},
		{"offsetof(struct kvm_run, mmio.data)", runMMIOData},
		{"offsetof(struct kvm_run, mmio.len)", runMMIOLen},
		{"offsetof(struct kvm_run, mmio.is_write)", runMMIOIsWrite},
		{"offsetof(struct kvm_run, fail_entry.hardware_entry_failure_reason)", runFailEntryReason},
		{"offsetof(struct kvm_run, fail_entry.cpu)", runFailEntryCPU},
		{"offsetof(struct kvm_run, ex.exception)", runExException},
		{"offsetof(struct kvm_run, ex.error_code)", runExErrorCode},
		{"offsetof(struct kvm_run, internal.suberror)", runInternalSuberror},
		{"offsetof(struct kvm_run, internal.ndata)", runInternalNdata},
		{"offsetof(struct kvm_run, internal.data)", runInternalData},
		{"offsetof(struct kvm_run, emulation_failure.flags)", runEmulationFlags},
		{"offsetof(struct kvm_run, emulation_failure.insn_size)", runEmulationInsnLen},
		{"offsetof(struct kvm_run, emulation_failure.insn_bytes)", runEmulationInsn},
		{"offsetof(struct kvm_run, system_event.type)", runSystemEventType},
		{"offsetof(struct kvm_run, system_event.ndata)", runSystemEventNdata},
		{"offsetof(struct kvm_run, system_event.data)", runSystemEventData},
	}
}

// TestABI_MatchesCHeaders compiles a C program against <linux/kvm.h> that
// prints every fact, and compares each with the Go value.
func TestABI_MatchesCHeaders(t *testing.T) {
	cc, err := exec.LookPath("gcc")
	if err != nil {
		t.Fatalf("gcc is needed to check the KVM ABI against <linux/kvm.h>: %v (run `make deps`)", err)
	}
	facts := abiFacts()
	var src strings.Builder
	src.WriteString("#include <stdio.h>\n#include <stddef.h>\n#include <linux/kvm.h>\nint main(void) {\n")
	for i, f := range facts {
		fmt.Fprintf(&src, "\tprintf(\"%d %%llu\\n\", (unsigned long long)(%s));\n", i, f.C)
	}
	src.WriteString("\treturn 0;\n}\n")
	dir := t.TempDir()
	cfile, bin := filepath.Join(dir, "abi.c"), filepath.Join(dir, "abi")
	if err := os.WriteFile(cfile, []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(cc, "-o", bin, cfile).CombinedOutput(); err != nil {
		t.Fatalf("compile ABI probe: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatalf("run ABI probe: %v", err)
	}
	seen := 0
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		var i int
		var v uint64
		if _, err := fmt.Sscanf(sc.Text(), "%d %d", &i, &v); err != nil || i < 0 || i >= len(facts) {
			t.Fatalf("bad probe line %q", sc.Text())
		}
		seen++
		if facts[i].Go != v {
			t.Errorf("%s: C says %s, Go says %s", facts[i].C, strconv.FormatUint(v, 16), strconv.FormatUint(facts[i].Go, 16))
		}
	}
	if seen != len(facts) {
		t.Fatalf("probe printed %d facts, want %d", seen, len(facts))
	}
}
