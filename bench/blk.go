package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// The virtio-blk suite: a guest's sequential requests, one at a time,
// through each VMM's virtio-blk over PCI to the same disk image file. The
// benchblk micro-guest writes and reads n requests of 4 KiB and of 64 KiB;
// QEMU runs the q35 machine (SeaBIOS, then the guest's 32-bit entry) with
// a modern-only virtio-blk-pci on a raw file with the host page cache
// (cache=writeback), as vmm's file backend uses it. The guest negotiates
// VIRTIO_BLK_F_FLUSH and never flushes, so no figure waits for the disk.

func init() { register(suite{name: "virtio-blk", run: blkSuite, baseline: true}) }

const (
	// blkN is the requests per phase: a few tenths of a second each. Most
	// of a run is q35's firmware, so more would cost more than it buys.
	blkN = 1000
	// blkDiskSize is the disk image: 64 KiB requests wrap at its end.
	blkDiskSize = 64 << 20
)

func blkSuite(e *Env) ([]Result, error) {
	kernel, err := e.Guest("benchblk")
	if err != nil {
		return nil, err
	}
	disk := filepath.Join(e.Work, "blk-bench.img")
	if err := writePatternFile(disk, blkDiskSize); err != nil {
		return nil, err
	}
	defer os.Remove(disk)
	cmdline := "n=" + strconv.Itoa(blkN)
	e.Logf("virtio-blk: benchblk n=%d on a %d MiB file under vmm and QEMU q35", blkN, blkDiskSize>>20)
	var metrics []guestMetric
	for _, op := range []string{"read", "write"} {
		metrics = append(metrics,
			guestMetric{Phase: op + "-4k", Metric: "guest " + op + "s, 4 KiB sequential, one at a time", Unit: "req/s", Value: phase.Rate, AtLeast: peerRateTarget},
			guestMetric{Phase: op + "-64k", Metric: "guest " + op + "s, 64 KiB sequential, one at a time", Unit: "MB/s", Value: phase.MBps, AtLeast: peerRateTarget})
	}
	return guestSuite{
		Suite: "virtio-blk", Guest: "benchblk", Peer: peerQ35,
		VMM:     func() guestCmd { return guestCmd{Argv: vmmBoot(e, kernel, cmdline, "--disk", disk)} },
		PeerCmd: func() guestCmd { return guestCmd{Argv: qemuBoot(e, "q35", kernel, cmdline, qemuBlkArgs(disk)...)} },
		Metrics: metrics,
	}.run(e)
}

// peerQ35 names the peer of the suites whose guests need PCI devices.
const peerQ35 = "QEMU q35"

// qemuBlkArgs attach disk as QEMU's modern-only virtio-blk-pci.
func qemuBlkArgs(disk string) []string {
	return []string{
		"-drive", "file=" + disk + ",if=none,id=d,format=raw,cache=writeback",
		"-device", "virtio-blk-pci,drive=d,disable-legacy=on",
	}
}

// writePatternFile writes size bytes that are neither zero nor the same
// from block to block (no holes, nothing a file system could share) and
// leaves them in the page cache.
func writePatternFile(path string, size int) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for off := 0; off < size; off += len(buf) {
		for i := range buf {
			buf[i] = byte(off>>12) + byte(i) + byte(i>>9)*7 + 1
		}
		if _, err := f.Write(buf[:min(len(buf), size-off)]); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return f.Close()
}
