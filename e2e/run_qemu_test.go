package e2e

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/vmm-dev/vmm/guestinit/protocol"
	"github.com/vmm-dev/vmm/images"
	"github.com/vmm-dev/vmm/images/busybox"
	"github.com/vmm-dev/vmm/images/rootfs"
)

// The run tests prove `vmm run`'s guest side against a real kernel, under
// QEMU's software emulator as the reference VMM: a real image (busybox)
// becomes a read-only ext4 disk, the run config travels in a cpio appended
// to the cached initramfs, and guestinit runs the workload on an overlay,
// with its stdout, stderr, stdin and the control messages on
// virtio-console ports, which QEMU connects to files here. Each boot runs
// one workload; the few boots between them check the output streams byte
// for byte, the exit statuses, the image config and its overrides, the
// host name, the network, the overlay, the control port's signals, a
// terminal (-t) and a workload that cannot start.

// runCmdline keeps the kernel quiet, as `vmm run` does: the console then
// carries guestinit's own messages and the kernel's warnings.
const runCmdline = linuxCmdline + " quiet"

// kmsgLine is what the facts workload writes to the kernel log; it must
// come out on the console and nowhere else.
const kmsgLine = "vmm-e2e: kernel message from the workload"

// runGuest is what every boot of the run tests shares.
type runGuest struct {
	qemu   string
	kernel images.Kernel
	base   string   // the cached initramfs: guestinit and the modules
	image  v1.Image // busybox
	rootfs string   // image as an ext4 disk, cached and shared: read-only
}

// runBoot is one boot: the run config and what the host feeds the guest.
type runBoot struct {
	cfg     protocol.RunConfig
	stdin   []byte // with cfg.Interactive: the stdin port's contents
	control string // the host's control messages, sent at start
	net     bool   // give the guest a NIC (QEMU user networking)
}

// runOutput is what a boot left: the ports' files and the console.
type runOutput struct {
	stdout, stderr, control, console string
}

func newRunGuest(t *testing.T) *runGuest {
	t.Helper()
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Fatal("qemu-system-x86_64 not found: run `make deps` (installs Debian's qemu-system-x86)")
	}
	g := &runGuest{qemu: qemu}
	g.kernel, g.base = virtioGuest(t)
	cache, err := images.CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	g.image, err = busybox.Image(ctx, cache)
	if errors.Is(err, images.ErrDebDownload) {
		t.Skipf("RUN TIER SKIPPED: no image to run: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	var st rootfs.Stats
	if g.rootfs, st, err = rootfs.Build(ctx, g.image, cache, rootfs.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("busybox image and its rootfs (%d bytes, cached %v) ready in %v", st.DiskBytes, st.Cached, time.Since(start).Round(time.Millisecond))
	return g
}

// imageConfig is the run config's copy of img's config.
func imageConfig(t *testing.T, img v1.Image) protocol.ImageConfig {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	return protocol.ImageConfig{Entrypoint: c.Entrypoint, Cmd: c.Cmd, Env: c.Env, WorkingDir: c.WorkingDir, User: c.User}
}

// runConfig is a run of the image with args.
func (g *runGuest) runConfig(t *testing.T, args ...string) protocol.RunConfig {
	return protocol.RunConfig{Version: protocol.RunConfigVersion, Image: imageConfig(t, g.image), Args: args}
}

// boot runs b in QEMU until the guest powers off and returns the output.
// It fails the test unless QEMU ends cleanly after a power-off.
func (g *runGuest) boot(t *testing.T, b runBoot) runOutput {
	t.Helper()
	dir := t.TempDir()
	at := func(name string) string { return filepath.Join(dir, name) }
	initrd, err := os.Create(at("run.cpio"))
	if err != nil {
		t.Fatal(err)
	}
	if err := images.WriteRunInitramfs(initrd, g.base, b.cfg); err != nil {
		t.Fatal(err)
	}
	if err := initrd.Close(); err != nil {
		t.Fatal(err)
	}
	// QEMU 7.2's file chardev has no input-path; a socket gives the guest
	// input, and its end once the host closes it.
	control := hostSocket(t, at("control.sock"), []byte(b.control), false)
	args := []string{
		"-accel", "tcg", "-M", qemuMachine, "-cpu", "max", "-m", "256M",
		"-nographic", "-no-reboot",
		"-kernel", g.kernel.Path, "-initrd", initrd.Name(), "-append", runCmdline,
		// The image first, as `vmm run` attaches it: /dev/vda.
		"-drive", "file=" + g.rootfs + ",if=none,id=root,format=raw,readonly=on",
		"-device", "virtio-blk-pci,drive=root,disable-legacy=on",
		"-device", "virtio-serial-pci,disable-legacy=on",
		"-chardev", "file,id=out,path=" + at("stdout"),
		"-device", "virtserialport,name=" + protocol.PortStdout + ",chardev=out",
		"-chardev", "file,id=err,path=" + at("stderr"),
		"-device", "virtserialport,name=" + protocol.PortStderr + ",chardev=err",
		"-chardev", "socket,id=ctl,path=" + at("control.sock"),
		"-device", "virtserialport,name=" + protocol.PortControl + ",chardev=ctl",
	}
	if b.cfg.Interactive || b.cfg.TTY {
		hostSocket(t, at("stdin.sock"), b.stdin, true)
		args = append(args,
			"-chardev", "socket,id=in,path="+at("stdin.sock"),
			"-device", "virtserialport,name="+protocol.PortStdin+",chardev=in")
	}
	if b.net {
		// restrict=on: QEMU forwards nothing the guest sends beyond its
		// own virtual network, so no traffic leaves the test.
		args = append(args, "-netdev", "user,id=n0,restrict=on", "-device", "virtio-net-pci,netdev=n0,disable-legacy=on")
	} else {
		args = append(args, "-nic", "none")
	}
	ctx, cancel := context.WithTimeout(context.Background(), linuxBootTime)
	defer cancel()
	cmd := exec.CommandContext(ctx, g.qemu, args...)
	start := time.Now()
	console, err := cmd.CombinedOutput()
	o := runOutput{console: string(console)}
	if ctx.Err() != nil {
		t.Fatalf("QEMU still running after %v, killed; console end:\n%s", linuxBootTime, consoleTail(o.console))
	}
	if err != nil {
		t.Fatalf("%s: %v; console end:\n%s", cmd, err, consoleTail(o.console))
	}
	if !strings.Contains(o.console, poweredOff) {
		t.Errorf("QEMU exited without %q: the guest did not power off; console end:\n%s", poweredOff, consoleTail(o.console))
	}
	select {
	case data := <-control:
		o.control = string(data)
	case <-time.After(10 * time.Second):
		t.Fatal("the control socket stayed open after QEMU exited")
	}
	for name, s := range map[string]*string{"stdout": &o.stdout, "stderr": &o.stderr} {
		data, err := os.ReadFile(at(name))
		if err != nil {
			t.Fatal(err)
		}
		*s = string(data)
	}
	t.Logf("QEMU TCG: the workload ran and the guest powered off in %v", time.Since(start).Round(time.Millisecond))
	return o
}

// hostSocket listens at path for QEMU's socket chardev (QEMU connects at
// start), sends it input, and closes the sending side when closeInput.
// The channel gets everything QEMU sent, once it has closed the
// connection by exiting.
func hostSocket(t *testing.T, path string, input []byte, closeInput bool) <-chan []byte {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ln.SetDeadline(time.Now().Add(linuxBootTime))
	got := make(chan []byte, 1)
	go func() {
		defer close(got)
		conn, err := ln.AcceptUnix()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(linuxBootTime))
		if _, err := conn.Write(input); err != nil {
			return
		}
		if closeInput {
			conn.CloseWrite()
		}
		data, _ := io.ReadAll(conn)
		got <- data
	}()
	return got
}

// expectExit fails the test unless the control port carried exactly the
// exit status want.
func (o runOutput) expectExit(t *testing.T, want int) {
	t.Helper()
	if line := protocol.ExitMessage(want).String() + "\n"; o.control != line {
		t.Errorf("control port = %q, want %q; stderr %q; console end:\n%s", o.control, line, o.stderr, consoleTail(o.console))
	}
}

func TestLinux_QEMUTCG_Run(t *testing.T) {
	g := newRunGuest(t)
	t.Run("FactsOutputOverlayExit42", g.testFacts)
	t.Run("ImageConfigOverridesStdin", g.testImageConfig)
	t.Run("SignalDeath143", func(t *testing.T) {
		t.Parallel()
		o := g.boot(t, runBoot{cfg: g.runConfig(t, "sh", "-c", "kill -TERM $$")})
		o.expectExit(t, 128+15)
		if o.stdout != "" || o.stderr != "" {
			t.Errorf("stdout %q stderr %q, want nothing", o.stdout, o.stderr)
		}
	})
	t.Run("ControlSIGKILL137", func(t *testing.T) {
		t.Parallel()
		// Sent at once, before the workload runs: guestinit holds it
		// until it does. Without it the run would last ten minutes.
		o := g.boot(t, runBoot{cfg: g.runConfig(t, "sleep", "600"), control: protocol.SignalMessage(9).String() + "\n"})
		o.expectExit(t, 128+9)
	})
	t.Run("TTY", func(t *testing.T) {
		t.Parallel()
		cfg := g.runConfig(t, "sh", "-c", "stty size; tty; test -t 0 && test -t 2 && echo all-terminal")
		cfg.TTY = true
		cfg.Terminal = &protocol.TerminalSize{Rows: 30, Cols: 100}
		o := g.boot(t, runBoot{cfg: cfg})
		o.expectExit(t, 0)
		// The terminal ends lines with CR LF; stderr is silent with -t.
		if want := "30 100\r\n/dev/pts/0\r\nall-terminal\r\n"; o.stdout != want || o.stderr != "" {
			t.Errorf("stdout %q stderr %q; want stdout %q and no stderr", o.stdout, o.stderr, want)
		}
	})
	t.Run("NotFound127", func(t *testing.T) {
		t.Parallel()
		o := g.boot(t, runBoot{cfg: g.runConfig(t, "no-such-program")})
		o.expectExit(t, 127)
		want := `guestinit: start ["no-such-program"]: exec: "no-such-program": executable file not found in $PATH` + "\n"
		if o.stderr != want || o.stdout != "" {
			t.Errorf("stderr %q stdout %q; want stderr %q and no stdout", o.stderr, o.stdout, want)
		}
	})
}

// factsScript writes the image's busybox binary to stdout and what the
// workload sees to stderr, one fact a line, and exits 42. It changes the
// image's files on the way, which only the overlay may see.
const factsScript = `cat /bin/busybox
echo "<3>` + kmsgLine + `" > /dev/kmsg
{
echo "foo=$FOO"
echo "pwd=$(pwd)"
echo "hostname=$(hostname) $(cat /etc/hostname)"
echo "hosts=$(grep -c box /etc/hosts)"
echo "resolv=$(cat /etc/resolv.conf)"
echo "id=$(id -u):$(id -g) home=$HOME"
echo "route=$(ip route | grep ^default)"
echo new > /new-file && rm /bin/ls && echo more >> /etc/passwd
echo "overlay=$(cat /new-file) $(test -e /bin/ls && echo ls-still-there || echo ls-removed)"
} >&2
exit 42
`

// testFacts: stdout is the binary byte for byte, stderr the facts, and
// the kernel's messages, even one the workload provokes, stay on the
// console; the rootfs disk is unchanged after the workload changed its
// files.
func (g *runGuest) testFacts(t *testing.T) {
	t.Parallel()
	before := fileSHA256(t, g.rootfs)
	cfg := g.runConfig(t, "sh", "-c", factsScript)
	cfg.Env = []string{"FOO=bar baz"}
	cfg.WorkingDir = "/data/work"
	cfg.Hostname = "box"
	cfg.Network = &protocol.NetworkConfig{
		Addr: netip.MustParsePrefix("10.0.2.15/24"), Gateway: netip.MustParseAddr("10.0.2.2"),
		DNS: protocol.DNSConfig{Nameservers: []netip.Addr{netip.MustParseAddr("10.0.2.3")}},
	}
	o := g.boot(t, runBoot{cfg: cfg, net: true})
	o.expectExit(t, 42)

	want := imageFile(t, g.image, "bin/busybox")
	if o.stdout != string(want) {
		t.Errorf("stdout: %d bytes (sha256 %s), want /bin/busybox's %d bytes (sha256 %s) exactly",
			len(o.stdout), sha256Hex([]byte(o.stdout)), len(want), sha256Hex(want))
	}
	wantFacts := strings.Join([]string{
		"foo=bar baz",
		"pwd=/data/work",
		"hostname=box box",
		"hosts=1",
		"resolv=nameserver 10.0.2.3",
		"id=0:0 home=/root",
		"route=default via 10.0.2.2 dev eth0 ",
		"overlay=new ls-removed",
	}, "\n") + "\n"
	if o.stderr != wantFacts {
		t.Errorf("stderr (the facts):\n%s\nwant:\n%s", o.stderr, wantFacts)
	}
	if !strings.Contains(o.console, kmsgLine) {
		t.Errorf("the workload's kernel message is not on the console; console end:\n%s", consoleTail(o.console))
	}
	if strings.Contains(o.stdout+o.stderr, kmsgLine) {
		t.Error("a kernel message reached the workload's stdout or stderr")
	}
	if after := fileSHA256(t, g.rootfs); after != before {
		t.Errorf("the rootfs disk changed: sha256 %s before the run, %s after", before, after)
	}
}

// testImageConfig runs an image whose config has its own entrypoint,
// command, environment and working directory, with the run's
// --entrypoint, -u and -i: docker's merge of the two, the user's
// identity and home, and stdin from the host.
func (g *runGuest) testImageConfig(t *testing.T) {
	t.Parallel()
	cf, err := g.image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := *cf.Config.DeepCopy()
	c.Entrypoint = []string{"/bin/false"} // replaced by --entrypoint
	c.Cmd = []string{"image-cmd"}         // dropped with it
	c.Env = append(c.Env, "GREETING=from-image")
	c.WorkingDir = "/srv"
	img, err := mutate.Config(g.image, c)
	if err != nil {
		t.Fatal(err)
	}
	cfg := protocol.RunConfig{
		Version:     protocol.RunConfigVersion,
		Image:       imageConfig(t, img),
		Entrypoint:  &[]string{"/bin/sh", "-c"},
		Args:        []string{`read line; echo "$GREETING|$(id -u):$(id -g)|$(id -un)|$(pwd)|$HOME|$line"`},
		User:        "app",
		Interactive: true,
	}
	o := g.boot(t, runBoot{cfg: cfg, stdin: []byte("line from the host\n")})
	o.expectExit(t, 0)
	if want := "from-image|1000:1000|app|/srv|/home/app|line from the host\n"; o.stdout != want {
		t.Errorf("stdout = %q, want %q; stderr %q", o.stdout, want, o.stderr)
	}
}

// imageFile returns the contents of the file at name in img.
func imageFile(t *testing.T, img v1.Image, name string) []byte {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatalf("no %s in the image", name)
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimPrefix(hdr.Name, "./") == name {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return data
		}
	}
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
