package e2e

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	vnet "github.com/vmm-dev/vmm/virtio/net"
	"github.com/vmm-dev/vmm/vmm"
	"github.com/vmm-dev/vmm/vmm/netswitch"
	"github.com/vmm-dev/vmm/vmtest"
)

// Host faults and resource bounds, through the hostfault micro-guest.
//
// Disks: the blk role runs one request per console line, so a test can
// change the host under the guest (unlink, truncate, fail the device)
// between requests and check each one's status and data.
//
// Floods: the uart, nettx and netrx roles flood vmm until it gets
// SIGTERM; the tests read vmm's VmRSS when the flood begins and its VmHWM
// (peak) when it ends, and check the guest still powers off when asked.
//
// Limits: every count limit at its maximum at once still boots
// (cmd/vmm's TestBoot_ResourceLimits and vmm's TestConfig_ValidateLimits
// show one past each is refused).

const sectorSize = 512

// blkStep is one console command to the blk role and the answer it must
// get: the status, then " fnv=0x..." for a read that succeeded.
type blkStep struct {
	cmd, want string
}

// readOK is the answer to a read that returns data.
func readOK(data []byte) string {
	h := fnv.New32a()
	h.Write(data)
	return fmt.Sprintf("0 fnv=%#x", h.Sum32())
}

// sector is sector n of img.
func sector(img []byte, n int) []byte { return img[n*sectorSize : (n+1)*sectorSize] }

// written is what the guest's "w N" writes: byte i is i*7+N.
func written(n int) []byte {
	b := make([]byte, sectorSize)
	for i := range b {
		b[i] = byte(i*7 + n)
	}
	return b
}

// randomDisk writes size random bytes to path.
func randomDisk(t *testing.T, path string, size int) []byte {
	t.Helper()
	img := make([]byte, size)
	rand.Read(img)
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
	}
	return img
}

// startBlkGuest boots the hostfault guest's blk role on disk and waits
// until it takes commands.
func startBlkGuest(t *testing.T, disk string) *vmtest.VM {
	t.Helper()
	vm := vmtest.Start(t, vmtest.Config{Kernel: guest(t, "hostfault"), Memory: "32M", Cmdline: "console=ttyS0 blk",
		Args: []string{"--rng=false", "--disk", disk}})
	vm.Expect(`hostfault: blk capacity (\d+) sectors\nhostfault: blk ready\n`, guestTimeout)
	return vm
}

// runSteps sends each step's command and checks the guest's answer.
func runSteps(t *testing.T, vm *vmtest.VM, steps []blkStep) {
	t.Helper()
	for _, s := range steps {
		vm.SendLine(s.cmd)
		m := vm.Expect(`hostfault: `+regexp.QuoteMeta(s.cmd)+` status (\S+(?: fnv=0x[0-9a-f]+)?)\n`, guestTimeout)
		if m[1] != s.want {
			t.Errorf("%q: guest got %q, want %q", s.cmd, m[1], s.want)
		}
	}
}

// quitBlkGuest ends the blk role and checks vmm exits as the guest asks.
func quitBlkGuest(t *testing.T, vm *vmtest.VM) {
	t.Helper()
	vm.SendLine("q")
	if code := vm.Wait(guestTimeout); code != vmm.StatusGuestOff {
		t.Errorf("exit status %d, want %d (the guest's reset); stderr:\n%s", code, vmm.StatusGuestOff, vm.Stderr())
	}
	for _, bad := range []string{"panic", "goroutine ", "fatal error"} {
		if strings.Contains(vm.Stderr(), bad) {
			t.Errorf("vmm's stderr holds %q:\n%s", bad, vm.Stderr())
		}
	}
}

// TestHostFault_DiskUnlinked_KeepsWorking: the disk image is unlinked
// while the guest runs. vmm's open descriptor keeps the file alive, so
// reads still return the image's bytes, writes and flushes succeed, and
// what the guest wrote is in the (now nameless) file vmm holds.
func TestHostFault_DiskUnlinked_KeepsWorking(t *testing.T) {
	disk := filepath.Join(t.TempDir(), "disk.img")
	img := randomDisk(t, disk, 64<<10)
	vm := startBlkGuest(t, disk)
	if err := os.Remove(disk); err != nil {
		t.Fatal(err)
	}
	runSteps(t, vm, []blkStep{
		{"r 0", readOK(sector(img, 0))},
		{"w 1", "0"},
		{"r 1", readOK(written(1))},
		{"f", "0"},
		{"r 127", readOK(sector(img, 127))},
	})
	held := heldFile(t, vm.PID(), disk+" (deleted)")
	want := bytes.Clone(img)
	copy(want[sectorSize:], written(1))
	if !bytes.Equal(held, want) {
		t.Errorf("the unlinked image vmm holds is not the original with sector 1 written (%d bytes, want %d)", len(held), len(want))
	}
	quitBlkGuest(t, vm)
}

// heldFile reads the file process pid holds open whose /proc/PID/fd link
// reads target: an unlinked file is still reachable there.
func heldFile(t *testing.T, pid int, target string) []byte {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if link, _ := os.Readlink(filepath.Join(dir, e.Name())); link == target {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	t.Fatalf("vmm (pid %d) holds no descriptor to %q", pid, target)
	return nil
}

// TestHostFault_DiskTruncated_ReadsPastTheEndFail: the image is cut from
// 128 sectors to 32 and 100 bytes under a guest that was told 128. Reads
// before the new end still return the image's bytes; a read that
// straddles it or lies past it gets VIRTIO_BLK_S_IOERR, not a sector of
// zeros reported OK (even for a sector the guest read before, which the
// host's page cache held); the guest goes on, and a write inside the
// capacity grows the file again, as pwrite does.
func TestHostFault_DiskTruncated_ReadsPastTheEndFail(t *testing.T) {
	disk := filepath.Join(t.TempDir(), "disk.img")
	img := randomDisk(t, disk, 64<<10)
	vm := startBlkGuest(t, disk)
	runSteps(t, vm, []blkStep{{"r 40", readOK(sector(img, 40))}})
	if err := os.Truncate(disk, 32*sectorSize+100); err != nil {
		t.Fatal(err)
	}
	runSteps(t, vm, []blkStep{
		{"r 31", readOK(sector(img, 31))},
		{"r 32", "1"}, // 100 bytes of it are left
		{"r 40", "1"},
		{"r 127", "1"},
		{"w 40", "0"},
		{"r 40", readOK(written(40))},
		{"f", "0"},
	})
	quitBlkGuest(t, vm)
	if fi, err := os.Stat(disk); err != nil || fi.Size() != 41*sectorSize {
		t.Errorf("image after the run: %v, %v; want %d bytes (the truncated file grown by the write to sector 40)", fi, err, 41*sectorSize)
	}
}

// TestHostFault_DiskEIO_IOErrAndGoesOn: the block device under the
// image's file system fails: reads of the image's second half get EIO
// from the kernel. The guest's reads there, and a write there (the
// kernel must read the rest of the page first), get VIRTIO_BLK_S_IOERR;
// the first half still reads, writes and flushes, and the guest ends as
// it asks.
func TestHostFault_DiskEIO_IOErrAndGoesOn(t *testing.T) {
	vmtest.RequireKVM(t) // before a loop device is set up for nothing
	disk, img := failingDisk(t)
	vm := startBlkGuest(t, disk)
	runSteps(t, vm, []blkStep{
		{"r 0", readOK(sector(img, 0))},
		{"r 64", "1"},
		{"r 127", "1"},
		{"w 64", "1"},
		{"r 1", readOK(sector(img, 1))},
		{"w 2", "0"},
		{"r 2", readOK(written(2))},
		{"f", "0"},
	})
	quitBlkGuest(t, vm)
}

// failingDisk makes a 64 KiB image whose sectors 64-127 fail with EIO in
// the block layer, with no device-mapper (this host's kernel has none):
// an ext4 file system on a loop device doing direct I/O, whose backing
// file is then cut short just before the image's second half. A loop
// device in direct-I/O mode fails reads past its backing file's end with
// EIO (a buffered one returns zeros). Everything is undone in Cleanup.
func failingDisk(t *testing.T) (string, []byte) {
	t.Helper()
	const skip = "DISK EIO TEST SKIPPED: "
	if os.Geteuid() != 0 {
		t.Skip(skip + "a loop device and a mount need root")
	}
	for _, tool := range []string{"losetup", "mkfs.ext4", "filefrag"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf(skip+"%s is not installed (util-linux, e2fsprogs)", tool)
		}
	}
	dir, err := os.MkdirTemp("", "hostfault-eio-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	backing := filepath.Join(dir, "backing.img")
	if err := os.WriteFile(backing, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(backing, 8<<20); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--direct-io=on", "--find", "--show", backing).CombinedOutput()
	if err != nil {
		t.Skipf(skip+"no loop device: losetup: %v: %s", err, out)
	}
	loop := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "--detach", loop).Run() })
	if dio, _ := os.ReadFile("/sys/block/" + filepath.Base(loop) + "/loop/dio"); strings.TrimSpace(string(dio)) != "1" {
		t.Skipf(skip+"%s does not do direct I/O (the file system under %s refuses O_DIRECT); buffered, it reads zeros past its backing file instead of failing", loop, dir)
	}
	// No journal: ext4's own writes then stay in the metadata at the
	// start, clear of the blocks cut off below.
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-O", "^has_journal", "-b", "4096", loop).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4 %s: %v: %s", loop, err, out)
	}
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(loop, mnt, "ext4", 0, ""); err != nil {
		t.Fatalf("mount %s: %v", loop, err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })

	disk := filepath.Join(mnt, "disk.img")
	img := make([]byte, 64<<10)
	rand.Read(img)
	f, err := os.Create(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(img); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil { // allocates the blocks filefrag reports
		t.Fatal(err)
	}
	first := imageStart(t, disk, len(img)/4096)
	if err := os.Truncate(backing, (first+8)*4096); err != nil {
		t.Fatal(err)
	}
	// Drop the image's cached pages, so the guest's reads reach the loop
	// device.
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
	return disk, img
}

// imageStart is the file-system block (4 KiB) where path's data starts;
// the data must be one extent of that many blocks.
func imageStart(t *testing.T, path string, blocks int) int64 {
	t.Helper()
	out, err := exec.Command("filefrag", "-e", path).CombinedOutput()
	if err != nil {
		t.Fatalf("filefrag %s: %v: %s", path, err, out)
	}
	m := regexp.MustCompile(`(?m)^\s*0:\s+0\.\.\s*(\d+):\s+(\d+)\.\.`).FindSubmatch(out)
	if m == nil || string(m[1]) != strconv.Itoa(blocks-1) {
		t.Skipf("DISK EIO TEST SKIPPED: the image is not one extent of %d blocks on the fresh file system:\n%s", blocks, out)
	}
	first, _ := strconv.ParseInt(string(m[2]), 10, 64)
	return first
}

// floodFor is how long each flood runs.
const floodFor = 5 * time.Second

// growthBoundKB bounds how much more memory vmm holds at a flood's peak
// than when it began: generous (the Go runtime takes a few MiB of heap
// and threads as the data path warms up), yet a small fraction of the
// hundreds of MiB of frames a network flood offers.
const growthBoundKB = 16 << 10

// consoleSlack is how far a guest's console output may run ahead of what
// the host has read: the one-page pipe, the UART's 4 KiB transmit buffer,
// and the lines written while the power button is pressed, with margin.
const consoleSlack = 16 << 10

// memKB returns process pid's VmRSS and VmHWM (its peak RSS), in KiB.
func memKB(t *testing.T, pid int) (rss, hwm int64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		key, val, _ := strings.Cut(line, ":")
		f := strings.Fields(val)
		if len(f) == 0 {
			continue
		}
		switch key {
		case "VmRSS":
			rss, _ = strconv.ParseInt(f[0], 10, 64)
		case "VmHWM":
			hwm, _ = strconv.ParseInt(f[0], 10, 64)
		}
	}
	if rss == 0 || hwm == 0 {
		t.Fatalf("no VmRSS or VmHWM in /proc/%d/status:\n%s", pid, b)
	}
	return rss, hwm
}

// heapKB is the test process's heap in use after a collection: where
// the in-process switch keeps what it keeps.
func heapKB() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse >> 10)
}

// checkGrowth fails the test if after is more than growthBoundKB above
// before.
func checkGrowth(t *testing.T, what string, before, after int64) {
	t.Helper()
	if after-before > growthBoundKB {
		t.Errorf("%s grew from %d KiB to %d KiB during the flood: more than %d KiB", what, before, after, growthBoundKB)
	}
}

// floodLine is one line of the uart role's flood.
const floodLine = "hostfault: flood 0123456789abcdefghijklmnopqrstuvwxyz0123456789\n"

// TestHostFault_ConsoleFlood_SlowReader_MemoryBounded: the guest writes
// to the UART as fast as it can while vmm's stdout is a one-page pipe
// that nobody reads for 2 s, then one that is read 1 KiB every 100 ms.
// vmm holds the guest back (the UART's write to the full pipe blocks the
// vCPU) instead of buffering: the guest writes no more than consoleSlack
// beyond what was read, every byte it wrote arrives, vmm's peak RSS stays
// within growthBoundKB of the start, and SIGTERM still powers it off.
func TestHostFault_ConsoleFlood_SlowReader_MemoryBounded(t *testing.T) {
	kernel := guest(t, "hostfault")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, 4096); err != nil {
		t.Fatal(err)
	}
	stderr, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	vmmStderr := func() string { b, _ := os.ReadFile(stderr.Name()); return string(b) }
	cmd := exec.Command(vmtest.Binary(t), "boot", "--kernel", kernel, "--memory", "32M",
		"--cmdline", "console=ttyS0 uart", "--rng=false")
	cmd.Stdout, cmd.Stderr = w, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	// Neither vmm nor a read of its output outlives a failed test.
	watchdog := time.AfterFunc(floodFor+time.Minute, func() { cmd.Process.Kill() })
	defer watchdog.Stop()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })

	var out bytes.Buffer
	buf := make([]byte, 4096)
	read := func(n int) {
		k, err := r.Read(buf[:n])
		out.Write(buf[:k])
		if err != nil {
			t.Fatalf("read vmm's console: %v; stderr:\n%s", err, vmmStderr())
		}
	}
	for !bytes.Contains(out.Bytes(), []byte("hostfault: uart begin\n")) {
		read(len(buf))
	}
	rss0, _ := memKB(t, cmd.Process.Pid)
	start := time.Now()
	time.Sleep(2 * time.Second)
	for time.Since(start) < floodFor {
		read(1024)
		time.Sleep(100 * time.Millisecond)
	}
	_, hwm := memKB(t, cmd.Process.Pid)
	readDuring := out.Len()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(r) // fast now: the guest sees the button once its writes go through
	out.Write(rest)
	<-done

	m := regexp.MustCompile(`hostfault: uart end (\d+) bytes\n`).FindSubmatch(out.Bytes())
	lines := bytes.Count(out.Bytes(), []byte(floodLine))
	if code := cmd.ProcessState.ExitCode(); code != vmm.StatusGuestOff || m == nil {
		t.Fatalf("exit status %d, end line %q; want %d and the guest's end line; stderr:\n%s", code, m, vmm.StatusGuestOff, vmmStderr())
	}
	wrote, _ := strconv.Atoi(string(m[1]))
	if wrote != lines*len(floodLine) {
		t.Errorf("the guest wrote %d bytes of flood lines, %d arrived", wrote, lines*len(floodLine))
	}
	if wrote > readDuring+consoleSlack {
		t.Errorf("the guest wrote %d bytes while %d were read: more than %d ahead, so vmm buffered instead of holding it back", wrote, readDuring, consoleSlack)
	}
	checkGrowth(t, "vmm's RSS", rss0, hwm)
	t.Logf("console flood: vmm RSS %d KiB at the start, peak %d KiB; the guest wrote %d bytes, %d read during the %v flood, the rest after SIGTERM",
		rss0, hwm, wrote, readDuring, floodFor)
}

// The switch-side station of the network floods, and the guest's address.
var (
	stationMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01} // the nettx role sends here
	guestMAC   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
)

// newSwitch starts a switch in this process, in a short directory (unix
// socket paths are short), for a test that needs its own port on it.
func newSwitch(t *testing.T) *netswitch.Switch {
	t.Helper()
	dir, err := os.MkdirTemp("", "hostfault-")
	if err != nil {
		t.Fatal(err)
	}
	sw, err := netswitch.New(filepath.Join(dir, "sw.sock"))
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sw.Close()
		os.RemoveAll(dir)
	})
	return sw
}

// station joins sw as vmm's socket backend does (an autobound unix
// datagram socket connected to the switch, which registers mac first)
// and waits until the switch has learned mac. The socket sends with a
// timeout, so a switch that stopped reading fails the test rather than
// hanging it.
func station(t *testing.T, sw *netswitch.Switch, mac net.HardwareAddr) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	tv := unix.NsecToTimeval(int64(time.Second))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: sw.Addr()}); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Write(fd, mac); err != nil {
		t.Fatal(err)
	}
	waitLearned(t, sw, mac)
	return fd
}

// waitLearned waits until sw knows which port owns mac.
func waitLearned(t *testing.T, sw *netswitch.Switch, mac net.HardwareAddr) {
	t.Helper()
	for deadline := time.Now().Add(guestTimeout); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, ok := sw.Stats().Port(mac); ok {
			return
		}
	}
	t.Fatalf("the switch never learned %v", mac)
}

// startNetGuest boots the hostfault guest's role (nettx or netrx) on sw
// as guestMAC and waits for its flood to begin.
func startNetGuest(t *testing.T, sw *netswitch.Switch, role string) *vmtest.VM {
	t.Helper()
	vm := vmtest.Start(t, vmtest.Config{Kernel: guest(t, "hostfault"), Memory: "32M", Cmdline: "console=ttyS0 " + role,
		Args: []string{"--rng=false", "--net", "socket=" + sw.Addr() + ",mac=" + guestMAC.String()}})
	vm.Expect(`hostfault: `+role+` begin\n`, guestTimeout)
	return vm
}

// powerOff sends vmm SIGTERM (the ACPI power button) and checks the
// flooding guest ends its flood, printing its count, and powers off.
func powerOff(t *testing.T, vm *vmtest.VM, role string) int {
	t.Helper()
	vm.Signal(syscall.SIGTERM)
	m := vm.Expect(`hostfault: `+role+` end (\d+) frames\n`, guestTimeout)
	if code := vm.Wait(guestTimeout); code != vmm.StatusGuestOff {
		t.Errorf("exit status %d after SIGTERM, want %d (the guest's power-off); stderr:\n%s", code, vmm.StatusGuestOff, vm.Stderr())
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestHostFault_NetFloodFromGuest_MemoryBounded: the guest sends
// 1514-byte frames as fast as its device takes them to a station on the
// switch that never reads. The switch loses what the station has no room
// for and vmm drops what the switch has no room for, so neither vmm's RSS
// nor the switch's heap grows past growthBoundKB, the switch's tables
// stay at two ports, and SIGTERM still powers the guest off.
func TestHostFault_NetFloodFromGuest_MemoryBounded(t *testing.T) {
	sw := newSwitch(t)
	station(t, sw, stationMAC) // never read
	vm := startNetGuest(t, sw, "nettx")
	rss0, _ := memKB(t, vm.PID())
	heap0 := heapKB()
	time.Sleep(floodFor)
	_, hwm := memKB(t, vm.PID())
	heap1 := heapKB()
	sent := powerOff(t, vm, "nettx")

	st := sw.Stats()
	from, _ := st.Port(guestMAC)
	to, _ := st.Port(stationMAC)
	checkGrowth(t, "vmm's RSS", rss0, hwm)
	checkGrowth(t, "the switch's heap", heap0, heap1)
	if len(st.Ports) != 2 || sent == 0 || to.Lost == 0 || to.Delivered+to.Lost != from.Forwarded {
		t.Errorf("guest sent %d frames; switch: %d ports, from the guest %+v, to the station %+v; want 2 ports and the station's excess lost",
			sent, len(st.Ports), from, to)
	}
	t.Logf("guest flood: vmm RSS %d KiB at the start, peak %d KiB; switch heap %d -> %d KiB; the guest sent %d frames in %v, the switch forwarded %d, delivered %d and lost %d",
		rss0, hwm, heap0, heap1, sent, floodFor, from.Forwarded, to.Delivered, to.Lost)
}

// TestHostFault_NetFloodToGuest_MemoryBounded: a station on the switch
// sends 1514-byte frames to the guest as fast as the switch takes them,
// while the guest posts no receive buffer. vmm keeps at most
// vnet.RXQueueLen of them (and the one its receiver holds) and drops the
// rest: its RSS and the switch's heap stay within growthBoundKB, and when
// the guest finally posts buffers it gets at most that backlog. SIGTERM
// still powers it off.
func TestHostFault_NetFloodToGuest_MemoryBounded(t *testing.T) {
	sw := newSwitch(t)
	src := station(t, sw, stationMAC)
	vm := startNetGuest(t, sw, "netrx")
	rss0, _ := memKB(t, vm.PID())
	heap0 := heapKB()
	frame := make([]byte, 1514)
	copy(frame, guestMAC)
	copy(frame[6:], stationMAC)
	frame[12], frame[13] = 0x88, 0xb5
	sent := 0
	for start := time.Now(); time.Since(start) < floodFor; {
		if _, err := unix.Write(src, frame); err != nil && err != unix.EAGAIN && err != unix.EINTR {
			t.Fatalf("send frame %d: %v", sent, err)
		} else if err == nil {
			sent++
		}
	}
	_, hwm := memKB(t, vm.PID())
	heap1 := heapKB()

	vm.SendLine("r")
	m := vm.Expect(`hostfault: netrx got (\d+) frames\n`, guestTimeout)
	backlog, _ := strconv.Atoi(m[1])
	powerOff(t, vm, "netrx")

	st := sw.Stats()
	from, _ := st.Port(stationMAC)
	to, _ := st.Port(guestMAC)
	checkGrowth(t, "vmm's RSS", rss0, hwm)
	checkGrowth(t, "the switch's heap", heap0, heap1)
	if backlog < 1 || backlog > vnet.RXQueueLen+1 {
		t.Errorf("the guest got a backlog of %d frames once it posted buffers; want 1 to %d", backlog, vnet.RXQueueLen+1)
	}
	if from.Forwarded != uint64(sent) || to.Delivered+to.Lost != uint64(sent) {
		t.Errorf("sent %d frames; switch: from the station %+v, to the guest %+v; want every frame forwarded, then delivered or lost", sent, from, to)
	}
	t.Logf("host flood: vmm RSS %d KiB at the start, peak %d KiB; switch heap %d -> %d KiB; %d frames sent in %v, the switch delivered %d and lost %d, the guest got a backlog of %d",
		rss0, hwm, heap0, heap1, sent, floodFor, to.Delivered, to.Lost, backlog)
}

// TestResourceLimits_AllAtTheMaximum_Boots: every count limit at its
// maximum at once (vCPUs, disks, NICs, console ports, with the entropy
// device) and the smallest memory still build a machine whose PCI bus
// holds every device, so the limits fit the bus and the BAR window.
func TestResourceLimits_AllAtTheMaximum_Boots(t *testing.T) {
	kernel := guest(t, "pci")
	dir := t.TempDir()
	sw := newSwitch(t)
	var args []string
	for i := range vmm.MaxDisks {
		path := filepath.Join(dir, fmt.Sprintf("d%d.img", i))
		if err := os.WriteFile(path, make([]byte, 4096), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--disk", path)
	}
	for range vmm.MaxNICs {
		args = append(args, "--net", "socket="+sw.Addr())
	}
	for i := range vmm.MaxPorts {
		args = append(args, "--port", fmt.Sprintf("p%d", i))
	}
	res := vmtest.Run(t, vmtest.Config{Kernel: kernel, Memory: vmm.FormatSize(vmm.MinMemory), CPUs: vmm.MaxCPUs, Args: args}, 60*time.Second)
	// The host bridge, the disks, the NICs, one multiport console, the entropy device.
	want := fmt.Sprintf("pci: %d device(s) on bus 0\n", 1+vmm.MaxDisks+vmm.MaxNICs+1+1)
	if res.Code != vmm.StatusGuestOff || !strings.HasSuffix(res.Console, want) {
		t.Errorf("status %d, console:\n%s\nstderr:\n%s\nwant %d and the console to end %q", res.Code, res.Console, res.Stderr, vmm.StatusGuestOff, want)
	}
}
