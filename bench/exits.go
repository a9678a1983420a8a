package main

import "strconv"

// The exits suite: what one vCPU exit to the VMM and back costs. The
// benchexit micro-guest writes port 0x80 and then an unclaimed MMIO
// address n times each, under vmm and under QEMU's microvm, alternately;
// neither VMM has a device behind either address, so the figure is the
// exit path alone: KVM_RUN returning, decoding the exit, finding no device
// on the bus, entering the guest again.

func init() { register(suite{name: "exits", run: exitsSuite, baseline: true}) }

// exitsN is the writes per phase: about half a second of exits here, far
// more than the guest instructions around each (the host emulates guest
// code at ~2 M instructions/s).
const exitsN = 20000

// peerRateTarget is the goal for the guest suites' rates (exits,
// and blk and net requests with the same guest): at least QEMU's.
const peerRateTarget = 1.0

// guestMemory is what every benchmark guest gets, on both sides.
const guestMemory = "64M"

func exitsSuite(e *Env) ([]Result, error) {
	kernel, err := e.Guest("benchexit")
	if err != nil {
		return nil, err
	}
	cmdline := "n=" + strconv.Itoa(exitsN)
	e.Logf("exits: benchexit n=%d under vmm and QEMU microvm", exitsN)
	return guestSuite{
		Suite: "exits", Guest: "benchexit", Peer: peerMicrovm,
		VMM:     func() guestCmd { return guestCmd{Argv: vmmBoot(e, kernel, cmdline)} },
		PeerCmd: func() guestCmd { return guestCmd{Argv: qemuBoot(e, "microvm", kernel, cmdline)} },
		Metrics: []guestMetric{
			{Phase: "pio", Metric: "port I/O write exits (port 0x80, no device)", Unit: "exits/s",
				Value: phase.Rate, AtLeast: peerRateTarget},
			{Phase: "mmio", Metric: "MMIO write exits (0xd0000000, no device)", Unit: "exits/s",
				Value: phase.Rate, AtLeast: peerRateTarget},
		},
	}.run(e)
}

// vmmBoot is the vmm command line that boots kernel with cmdline and
// extra devices; no entropy device, which the guests do not use, and
// --compat=off, as vmmArgs (launch.go) says why.
func vmmBoot(e *Env, kernel, cmdline string, extra ...string) []string {
	argv := []string{e.VMM, "boot", "--kernel", kernel, "--memory", guestMemory, "--rng=false", "--compat=off", "--cmdline", cmdline}
	return append(argv, extra...)
}

// qemuBoot is the QEMU command line that boots kernel with cmdline on
// machine, console on stdout, plus extra devices. On microvm it is
// launch.go's qemuArgs (an i8042 added for the guest's reset); q35 (for
// PCI devices) enters through SeaBIOS and has its own i8042. -no-reboot
// turns the guest's reset into QEMU's exit. This host's software KVM
// needs arch-capabilities and cx16 off.
func qemuBoot(e *Env, machine, kernel, cmdline string, extra ...string) []string {
	argv := []string{e.QEMU, "-M", machine, "-enable-kvm", "-cpu", "host,-arch-capabilities,-cx16", "-m", guestMemory,
		"-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot",
		"-kernel", kernel, "-append", cmdline}
	if machine == "microvm" {
		argv = append(argv, "-device", "i8042")
	}
	return append(argv, extra...)
}
