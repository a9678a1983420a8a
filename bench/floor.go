package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// The start-up floor: programs that make only the KVM calls every VMM
// makes before a guest's first instruction, and nothing else. vmm's time
// to its first KVM_RUN less the floor's is what vmm itself adds; the floor
// is what this host charges any VMM. Two are measured:
//
//   - bench/floor, in Go, fetching CPUID beside the VM's creation as vmm
//     does: the floor for a VMM written in Go, runtime start included;
//   - floorC below, a static C program making the same calls one after
//     another: the floor for a VMM with no runtime to start.

// floorC does in C what bench/floor does in Go, and prints the same
// start-up trace lines on stderr.
const floorC = `#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>

static long long now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void check(int ok, const char *what)
{
	if (!ok) {
		perror(what);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	long long start = now(), entered;
	unsigned long mem_size = (argc > 1 ? strtoul(argv[1], 0, 10) : 128) << 20;
	int kvm, vm, vcpu, run_size;
	struct kvm_cpuid2 *cpuid;
	struct kvm_pit_config pit = {0};
	struct kvm_sregs sregs;
	struct kvm_regs regs = {.rip = 0x1000, .rflags = 2};
	struct kvm_run *run;
	char *mem;

	check((kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC)) >= 0, "open /dev/kvm");
	check(ioctl(kvm, KVM_GET_API_VERSION, 0) == KVM_API_VERSION, "KVM_GET_API_VERSION");
	cpuid = calloc(1, sizeof(*cpuid) + 256 * sizeof(struct kvm_cpuid_entry2));
	cpuid->nent = 256;
	check(ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid) == 0, "KVM_GET_SUPPORTED_CPUID");
	check((vm = ioctl(kvm, KVM_CREATE_VM, 0)) >= 0, "KVM_CREATE_VM");
	mem = mmap(0, mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	check(mem != MAP_FAILED, "map guest memory");
	memcpy(mem + 0x1000, "\xE6\x80\xF4", 3); /* out 0x80, al; hlt */
	struct kvm_userspace_memory_region region = {
		.memory_size = mem_size, .userspace_addr = (unsigned long)mem};
	check(ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) == 0, "KVM_SET_USER_MEMORY_REGION");
	check(ioctl(vm, KVM_SET_TSS_ADDR, 0xFFFBD000UL) == 0, "KVM_SET_TSS_ADDR");
	check(ioctl(vm, KVM_CREATE_IRQCHIP, 0) == 0, "KVM_CREATE_IRQCHIP");
	check(ioctl(vm, KVM_CREATE_PIT2, &pit) == 0, "KVM_CREATE_PIT2");
	check((vcpu = ioctl(vm, KVM_CREATE_VCPU, 0)) >= 0, "KVM_CREATE_VCPU");
	check((run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0)) > 0, "KVM_GET_VCPU_MMAP_SIZE");
	run = mmap(0, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	check(run != MAP_FAILED, "map kvm_run");
	check(ioctl(vcpu, KVM_SET_CPUID2, cpuid) == 0, "KVM_SET_CPUID2");
	check(ioctl(vcpu, KVM_GET_SREGS, &sregs) == 0, "KVM_GET_SREGS");
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	check(ioctl(vcpu, KVM_SET_SREGS, &sregs) == 0, "KVM_SET_SREGS");
	check(ioctl(vcpu, KVM_SET_REGS, &regs) == 0, "KVM_SET_REGS");
	entered = now();
	check(ioctl(vcpu, KVM_RUN, 0) == 0, "KVM_RUN");
	check(run->exit_reason == KVM_EXIT_IO && run->io.port == 0x80, "the guest's write to port 0x80");
	fprintf(stderr, "vmm: startup phase main at CLOCK_MONOTONIC %lld ns\n", start);
	fprintf(stderr, "vmm: startup phase first-kvm-run at CLOCK_MONOTONIC %lld ns\n", entered);
	return 0;
}
`

// floorProgram is one of the two floors, ready to run.
type floorProgram struct {
	name string // "Go", "C"
	bin  string
	note string // what it is, under the table
}

// floorPrograms builds both floors once: bench/floor with the Go toolchain,
// floorC with gcc, statically linked like vmm (a dynamically linked C
// program would add the loader's time).
func (e *Env) floorPrograms() ([]floorProgram, error) {
	if e.floors != nil {
		return e.floors, nil
	}
	goBin := filepath.Join(e.Work, "floor-go")
	build := exec.Command("go", "build", "-o", goBin, "github.com/vmm-dev/vmm/bench/floor")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build the Go floor: %w\n%s", err, out)
	}
	cBin, err := buildC(e.Work, "floor-c", floorC, "-static")
	if err != nil {
		return nil, fmt.Errorf("build the C floor (gcc with static libc and linux/kvm.h: make deps): %w", err)
	}
	e.floors = []floorProgram{
		{"Go", goBin, "the Go floor (bench/floor) makes only the KVM calls every VMM makes before the guest's first instruction, " +
			"fetching CPUID beside the VM's creation as vmm does: what this host charges a VMM written in Go; vmm's figures are those of the first row"},
		{"C", cBin, "the C floor (bench/floor.go) makes the same calls one after another from a static C program: " +
			"what this host charges a VMM with no runtime to start"},
	}
	return e.floors, nil
}

// floorOnce runs one floor program and returns its process start to first
// KVM_RUN in ms.
func floorOnce(f floorProgram, memMiB int) (float64, error) {
	cmd := exec.Command(f.bin, strconv.Itoa(memMiB))
	cmd.Env = append(os.Environ(), "VMM_TRACE_STARTUP=1")
	p, err := startProc(cmd)
	if err != nil {
		return 0, err
	}
	if err := p.wait(30 * time.Second); err != nil {
		return 0, fmt.Errorf("%s floor: %w", f.name, err)
	}
	at, ok := parseStartupPhase(p.stderrText(), "first-kvm-run")
	if !ok {
		return 0, fmt.Errorf("%s floor printed no first-kvm-run phase:\n%s", f.name, p.stderrText())
	}
	return ms(at - p.start), nil
}
