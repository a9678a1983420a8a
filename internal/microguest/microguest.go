// Package microguest builds the micro-guests: tiny freestanding programs
// entered exactly as a Linux kernel is (64-bit boot protocol, payload at
// 0x100000, entry at 0x100200, RSI = boot_params) that poll the UART, print
// what they see and reset. They stand in for Linux where the host's KVM is
// too slow or too limited to boot it, and prove the VMM end to end.
//
// The guests are kept as C and assembly source (embedded, so a build works
// from any directory) and compiled with the host's gcc and binutils when
// asked for, then wrapped into a bzImage with boot.BuildBzImage.
package microguest

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vmm-dev/vmm/boot"
)

//go:embed src/*.c src/*.h src/*.S src/*.ld
var sources embed.FS

// Guests returns the names of the guests that can be built, each from
// src/<name>.c:
//
//	hello        prints "hello from a vmm micro-guest" and resets
//	bootinfo     prints the cmdline, the e820 map and the initrd's place, size and FNV-1a-32
//	echo         prints "ready", reads a line, prints "echo: <line>"
//	highmem      maps 4-5 GiB itself, checks a pattern there, prints "highmem ok"
//	reset        prints a line and resets through the i8042
//	triplefault  loads an empty IDT and faults: the CPU shuts down
//	unhandled    reads and writes a port and an MMIO address nobody handles
//	cpuid        prints the CPUID registers the compatibility profile edits
//	acpi         walks the ACPI tables, counts CPUs, powers off through PM1a_CNT
//	pci          enumerates PCI bus 0 through 0xCF8/0xCFC
//	virtio       drives virtio-blk (GET_ID, read, write, flush) and virtio-rng over virtio-pci, polled
//	vconsole     drives the multiport virtio console's ports vmm.stdin/stdout/stderr
//	vrun         the guest end of vmm run's channel: stdio, control messages, exit status
//	vloop        opens the console port vmm.agent and writes back every byte it receives
//	vnetlab      a station on a netswitch segment: sends, prints and answers frames as its cmdline says
//	idle         prints "idle: ready", touches touch=N MiB, halts until stopped
//	benchexit    writes port 0x80, then an unclaimed MMIO address, n=N times each: exits/s (bench.h lines)
//	benchblk     n=N sequential 4 KiB and 64 KiB writes and reads on the first virtio-blk disk, one at a time
//	benchnet     sends n=N 1514-byte frames on the first virtio-net device, then receives N
//	pwrbtn       enables the ACPI power button, waits for a press, powers off
//	panic        prints Linux's panic line and resets, as a kernel with panic=-1 does
//	hostile      attacks every device from cpus=N CPUs, seeded by seed=N: port and MMIO garbage, UART flood, broken virtqueues and indirect tables, MSI-X and PCI config garbage
//	hostfault    blk requests on cue from the console, or a UART or virtio-net flood until the power button
//
// Each file's header comment gives its exact output. The bench* guests
// bracket each timed phase with the begin and end lines bench.h describes,
// which go run ./bench times from the host.
func Guests() []string { return slices.Clone(guests) }

var guests = []string{"hello", "bootinfo", "echo", "highmem", "reset", "triplefault", "unhandled", "cpuid", "acpi", "pci", "virtio", "virtioirq", "virtionet", "vconsole", "vrun", "vloop", "smp", "vnetlab", "idle", "pwrbtn", "hostile", "panic", "benchexit", "benchblk", "benchnet", "hostfault"}

// fallbackGuests build like the others but run instructions a software KVM
// cannot (int3, iretq, clac, stac), so they stay out of Guests(), whose
// members TestGuests keeps free of them: int3 needs vmm/emulate.
var fallbackGuests = []string{"int3", "syscall"}

// ErrNoToolchain means gcc or objcopy is not installed.
var ErrNoToolchain = errors.New("gcc and binutils are needed to build micro-guests")

// ErrUnknownGuest means the name is not one of Guests().
var ErrUnknownGuest = errors.New("unknown micro-guest")

// cflags keep the guest to plain integer x86-64: the host's software
// hypervisor cannot run SSE state saves, CMPXCHG16B, CLAC/STAC, int3 or iretq,
// and endbr64 (-fcf-protection) buys nothing here.
var cflags = []string{
	"-m64", "-march=x86-64", "-O2", "-Wall", "-Wextra", "-Werror",
	"-ffreestanding", "-nostdlib", "-static", "-fno-pic", "-no-pie",
	"-mcmodel=small", "-mno-red-zone", "-mgeneral-regs-only",
	"-fno-stack-protector", "-fcf-protection=none",
	"-fno-asynchronous-unwind-tables", "-fno-tree-loop-distribute-patterns",
	"-Wl,-T,link.ld", "-Wl,--build-id=none", "-Wl,-z,noexecstack",
}

// Build compiles the named guest and writes it to dir/<name>.bzImage,
// returning that path. Intermediate files go to a temporary directory
// inside dir, removed before Build returns.
func Build(name, dir string) (string, error) {
	work, err := os.MkdirTemp(dir, ".microguest-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	payload, err := Payload(name, work)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, name+".bzImage")
	if err := os.WriteFile(path, boot.BuildBzImage(payload, boot.BzImageOptions{}), 0o644); err != nil {
		return "", err
	}
	return path, nil
}

// Payload compiles the named guest in work and returns its flat binary: the
// bytes to load at 0x100000. work keeps the sources and <name>.elf, which is
// handy for objdump.
func Payload(name, work string) ([]byte, error) {
	if !slices.Contains(guests, name) && !slices.Contains(fallbackGuests, name) {
		return nil, fmt.Errorf("%w %q (have %s)", ErrUnknownGuest, name, strings.Join(guests, ", "))
	}
	for _, tool := range []string{"gcc", "objcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNoToolchain, err)
		}
	}
	// The compiler runs inside work, so a relative work would be resolved
	// twice.
	work, err := filepath.Abs(work)
	if err != nil {
		return nil, err
	}
	src := filepath.Join(work, "src")
	if err := os.CopyFS(src, mustSub(sources, "src")); err != nil {
		return nil, fmt.Errorf("write guest sources: %w", err)
	}
	elf := filepath.Join(work, name+".elf")
	bin := filepath.Join(work, name+".bin")
	args := append(slices.Clone(cflags), "-o", elf, "start.S", "rt.c", name+".c")
	if err := run(src, "gcc", args...); err != nil {
		return nil, fmt.Errorf("compile micro-guest %s: %w", name, err)
	}
	if err := run(src, "objcopy", "-O", "binary", elf, bin); err != nil {
		return nil, fmt.Errorf("flatten micro-guest %s: %w", name, err)
	}
	return os.ReadFile(bin)
}

// run runs a tool in dir and puts its output into the error, since that
// output is what explains a failed compile.
func run(dir, tool string, args ...string) error {
	cmd := exec.Command(tool, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w\n%s", tool, err, out)
	}
	return nil
}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // dir is a constant that go:embed has already checked
	}
	return sub
}
