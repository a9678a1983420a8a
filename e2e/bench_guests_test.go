package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/vmm-dev/vmm/vmm"
	"github.com/vmm-dev/vmm/vmtest"
)

// The benchmark micro-guests (go run ./bench measures them against QEMU)
// run here briefly under vmm: each phase must print its begin and end
// lines with the counts asked for, and the guest must end cleanly. The
// lines are logged, so `go test -v -run BenchGuest` shows the rates.

// benchEnd matches an end line with a PM-timer time, which vmm's machine
// has: the phase's name and its n and bytes.
func benchEnd(guest, phase string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^` + guest + `: ` + regexp.QuoteMeta(phase) + ` end n=(\d+) bytes=(\d+) us=\d+`)
}

// benchPhase is a phase a guest must report and the bytes per operation.
type benchPhase struct {
	name string
	size int
}

// checkBenchPhases checks the console holds every phase, begun and ended
// in order with n operations and n*size bytes each, and logs the end lines.
func checkBenchPhases(t *testing.T, console, guest string, n int, phases []benchPhase) {
	t.Helper()
	for _, p := range phases {
		ph, size := p.name, p.size
		begin := strings.Index(console, guest+": "+ph+" begin\n")
		m := benchEnd(guest, ph).FindStringSubmatchIndex(console)
		if begin < 0 || m == nil || m[0] < begin {
			t.Errorf("phase %s: no begin line followed by an end line", ph)
			continue
		}
		line := console[m[0]:]
		line = line[:strings.IndexByte(line, '\n')]
		t.Log(line)
		if got, want := console[m[2]:m[3]], strconv.Itoa(n); got != want {
			t.Errorf("phase %s: n=%s, want %s", ph, got, want)
		}
		if got, want := console[m[4]:m[5]], strconv.Itoa(n*size); got != want {
			t.Errorf("phase %s: bytes=%s, want %s", ph, got, want)
		}
	}
	if !strings.HasSuffix(console, guest+": done\n") {
		t.Errorf("console does not end with %q", guest+": done")
	}
	if t.Failed() {
		t.Logf("console:\n%s", console)
	}
}

// TestBenchGuest_Exits: benchexit's writes to port 0x80 and to
// 0xd0000000 each exit to vmm, which has no device there and counts them.
func TestBenchGuest_Exits(t *testing.T) {
	kernel := guest(t, "benchexit")
	res := vmtest.Run(t, vmtest.Config{Kernel: kernel, Memory: "32M", Cmdline: "n=500", Args: []string{"--rng=false"}}, guestTimeout)
	if res.Code != vmm.StatusGuestOff {
		t.Errorf("exit status %d, want %d; stderr:\n%s", res.Code, vmm.StatusGuestOff, res.Stderr)
	}
	if !strings.HasPrefix(res.Console, "benchexit: n=500 pm=1\n") {
		t.Errorf("console starts %q, want the n and PM timer line", res.Console)
	}
	checkBenchPhases(t, res.Console, "benchexit", 500, []benchPhase{{"pio", 0}, {"mmio", 0}})
	if !strings.Contains(res.Stderr, "unhandled accesses: pio=500 mmio=500") {
		t.Errorf("stderr %q: want vmm to count 500 unhandled port and MMIO accesses", res.Stderr)
	}
}

// TestBenchGuest_Blk: benchblk's sequential requests on a 1 MiB disk,
// wrapping at its end; its writes land in the file.
func TestBenchGuest_Blk(t *testing.T) {
	kernel := guest(t, "benchblk")
	disk := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(disk, bytes.Repeat([]byte{0xa5}, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	const n = 40 // 40 × 64 KiB wraps the disk twice
	res := vmtest.Run(t, vmtest.Config{Kernel: kernel, Memory: "32M", Cmdline: "n=40", Args: []string{"--rng=false", "--disk", disk}}, guestTimeout)
	if res.Code != vmm.StatusGuestOff {
		t.Errorf("exit status %d, want %d; stderr:\n%s", res.Code, vmm.StatusGuestOff, res.Stderr)
	}
	checkBenchPhases(t, res.Console, "benchblk", n, []benchPhase{
		{"write-4k", 4 << 10}, {"read-4k", 4 << 10}, {"write-64k", 64 << 10}, {"read-64k", 64 << 10}})
	// At least one look at the used ring per request.
	for _, ph := range []string{"write-4k", "read-4k", "write-64k", "read-64k"} {
		m := regexp.MustCompile(`(?m)^benchblk: ` + ph + ` polls=(\d+)$`).FindStringSubmatch(res.Console)
		if m == nil {
			t.Errorf("no polls line for %s", ph)
		} else if p, _ := strconv.Atoi(m[1]); p < n {
			t.Errorf("%s: %d polls for %d requests", ph, p, n)
		}
	}
	got, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1<<20 || bytes.Equal(got[:4096], bytes.Repeat([]byte{0xa5}, 4096)) {
		t.Errorf("disk is %d bytes and its first block unchanged: the guest's writes did not land", len(got))
	}
}

// TestBenchGuest_Net: benchnet sends its frames out of a TAP (counted by
// a packet socket on it) and receives the frames the test sends once it
// says it is ready.
func TestBenchGuest_Net(t *testing.T) {
	kernel := guest(t, "benchnet")
	ns := newNetns(t, "tap0", "")
	ps := newPacketSocket(t, ns, "tap0")
	const n = 50 // fewer than the TAP's queue of 1000 holds

	vm := vmtest.Start(t, vmtest.Config{
		Kernel: kernel, Memory: "32M", NetNS: ns, Cmdline: "n=50",
		Args: []string{"--net", "tap=tap0,mac=02:00:00:00:00:02", "--rng=false"},
	})
	vm.Expect(`benchnet: tx end n=50 `, guestTimeout)
	for i := range n {
		f, err := ps.recvType(0x88b5, guestTimeout)
		if err != nil {
			t.Fatalf("frame %d from the guest: %v; console:\n%s", i, err, vm.Console())
		}
		if len(f) != 1514 || !bytes.Equal(f[:12], []byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2}) {
			t.Fatalf("frame %d from the guest: %d bytes starting % x; want 1514 from 02:..:02 to 02:..:01", i, len(f), f[:min(len(f), 14)])
		}
	}

	vm.Expect(`benchnet: rx begin\n`, guestTimeout)
	frame := make([]byte, 1514)
	copy(frame, []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0xb5})
	for i := range n {
		if err := ps.send(frame); err != nil {
			t.Fatalf("send frame %d: %v", i, err)
		}
	}
	if code := vm.Wait(guestTimeout); code != vmm.StatusGuestOff {
		t.Errorf("exit status %d, want %d; stderr:\n%s", code, vmm.StatusGuestOff, vm.Stderr())
	}
	checkBenchPhases(t, vm.Console(), "benchnet", n, []benchPhase{{"tx", 1514}, {"rx", 1514}})
}
