package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/vmm-dev/vmm/images"
	"github.com/vmm-dev/vmm/images/busybox"
	"github.com/vmm-dev/vmm/vmtest"
)

// The tests here prove vmm run's host side: the image is prepared and the
// machine gets the run's ports, signals reach the guest's control port,
// and the guest's exit line becomes vmm's exit status. The guest is the
// vrun micro-guest (the guest end of the channel, as guestinit uses it)
// booted with --kernel; guestinit's own side runs under QEMU in
// run_qemu_test.go.

// runImage writes a small image into an OCI layout and returns its
// reference. The micro-guest never reads the disk, but vmm run still
// builds it.
func runImage(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	img, err := random.Image(4096, 2)
	if err != nil {
		t.Fatal(err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"})); err != nil {
		t.Fatal(err)
	}
	return "oci-layout:" + dir + ":v1"
}

// vmmRun is one `vmm run` process with its own cache.
type vmmRun struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	console        string
}

func startRun(t *testing.T, stdin io.Reader, args ...string) *vmmRun {
	t.Helper()
	dir := t.TempDir()
	r := &vmmRun{stdout: &syncBuffer{}, stderr: &syncBuffer{}, console: filepath.Join(dir, "console")}
	r.cmd = exec.Command(vmtest.Binary(t), append([]string{"run", "--console", r.console}, args...)...)
	r.cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+filepath.Join(dir, "cache"))
	r.cmd.Stdin, r.cmd.Stdout, r.cmd.Stderr = stdin, r.stdout, r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.cmd.Process.Kill() })
	return r
}

// wait returns vmm's exit status.
func (r *vmmRun) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- r.cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return r.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		r.cmd.Process.Kill()
		<-done
		t.Fatalf("vmm run still running after %v; stderr:\n%s", timeout, r.stderr)
		return -1
	}
}

func (r *vmmRun) consoleText() string {
	b, _ := os.ReadFile(r.console)
	return string(b)
}

// helloOut is what vrun writes on stdout before anything else.
func helloOut() []byte {
	b := []byte("hello on stdout\n")
	for i := range 256 {
		b = append(b, byte(i))
	}
	return b
}

// runBaseInitrd is a stand-in initramfs: the micro-guest ignores it, and
// --initrd spares the test building guestinit.
func runBaseInitrd(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "base.cpio")
	if err := os.WriteFile(p, make([]byte, 512), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRun_StdioAndExitStatus: with -i, stdin reaches the guest's stdin
// port (vrun echoes it to stdout and exits with its length mod 256),
// stdout and stderr arrive separately and byte-exact with no console
// line in them, and the exit line the guest queued just before powering
// off becomes vmm's exit status.
func TestRun_StdioAndExitStatus(t *testing.T) {
	kernel := guest(t, "vrun")
	in := bytes.Repeat([]byte{0, 0xff, '\n'}, 100) // 300 bytes: exit 300%256 = 44
	r := startRun(t, bytes.NewReader(in), "-i", "--memory", "64M", "--kernel", kernel, "--initrd", runBaseInitrd(t), runImage(t))
	code := r.wait(t, 30*time.Second)
	if code != 44 {
		t.Fatalf("exit status %d, want 44 (300 stdin bytes mod 256); stderr:\n%s\nconsole:\n%s", code, r.stderr, r.consoleText())
	}
	if want := append(helloOut(), in...); !bytes.Equal(r.stdout.Bytes(), want) {
		t.Errorf("stdout is %d bytes:\n%q\nwant %d bytes:\n%q", r.stdout.Len(), r.stdout.Bytes(), len(want), want)
	}
	if got := r.stderr.String(); got != "hello on stderr\n" {
		t.Errorf("stderr = %q, want only the workload's %q", got, "hello on stderr\n")
	}
	if c := r.consoleText(); !strings.Contains(c, "vrun: ready") || !strings.Contains(c, "vrun: exit 44") {
		t.Errorf("console file lacks the guest's own lines:\n%s", c)
	}
}

// TestRun_SignalReachesGuest: SIGTERM to vmm run becomes "signal 15" on
// the control port; vrun exits 128+15 as a workload killed by it would.
func TestRun_SignalReachesGuest(t *testing.T) {
	kernel := guest(t, "vrun")
	r := startRun(t, nil, "--memory", "64M", "--kernel", kernel, "--initrd", runBaseInitrd(t), runImage(t))
	deadline := time.Now().Add(30 * time.Second)
	for !bytes.Contains(r.stdout.Bytes(), []byte("hello on stdout")) {
		if time.Now().After(deadline) {
			t.Fatalf("no output from the guest; stderr:\n%s", r.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := r.wait(t, 20*time.Second); code != 143 {
		t.Fatalf("exit status %d, want 143; stderr:\n%s\nconsole:\n%s", code, r.stderr, r.consoleText())
	}
}

// TestRun_NoExitStatus: a guest that ends without reporting a status is
// vmm's failure (125), and the error shows the guest console's end.
func TestRun_NoExitStatus(t *testing.T) {
	kernel := guest(t, "hello")
	r := startRun(t, nil, "--memory", "64M", "--kernel", kernel, "--initrd", runBaseInitrd(t), runImage(t))
	code := r.wait(t, 30*time.Second)
	stderr := r.stderr.String()
	if code != 125 || !strings.Contains(stderr, "before the workload reported an exit status") ||
		!strings.Contains(stderr, "hello from a vmm micro-guest") {
		t.Fatalf("exit status %d, stderr:\n%s\nwant 125 and the console's end in the error", code, stderr)
	}
}

// TestRun_Errors: bad command lines and images fail before any VM, with
// the problem named.
func TestRun_Errors(t *testing.T) {
	vmtest.RequireKVM(t)
	missing := "oci-layout:" + filepath.Join(t.TempDir(), "nothing") + ":v1"
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "name an IMAGE"},
		{[]string{"-w", "relative", "img"}, 2, "absolute"},
		{[]string{"--net", "tap=t0,gw=10.0.0.1", "img"}, 2, "gw= needs ip="},
		{[]string{"--cpus", "0", "img"}, 2, "--cpus"},
		{[]string{"Not/Lower:case"}, 125, "Not/Lower:case"},
		{[]string{missing}, 125, "nothing"},
	} {
		r := startRun(t, nil, c.args...)
		code := r.wait(t, 30*time.Second)
		if code != c.code || !strings.Contains(r.stderr.String(), c.want) {
			t.Errorf("vmm run %q: status %d, stderr %q; want %d and %q", c.args, code, r.stderr, c.code, c.want)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

func (s *syncBuffer) Len() int { return len(s.Bytes()) }

func (s *syncBuffer) String() string { return string(s.Bytes()) }

// TestRun_BusyboxImage_RunsOrStopsWithDoctorsReason is the README's main
// job: a busybox image built locally, run with Debian's kernel. Where vmm
// runs Linux guests the workload's output and status come back; elsewhere
// vmm run prepares everything and stops with the doctor's reason, quickly
// and without a stack trace.
func TestRun_BusyboxImage_RunsOrStopsWithDoctorsReason(t *testing.T) {
	vmtest.RequireKVM(t)
	debianGuest(t, func(context.Context, string, images.Kernel) (string, error) { return "", nil }) // the kernel is cached, or skip
	ref := busyboxLayout(t)
	var report doctorReport
	out, _ := exec.Command(vmtest.Binary(t), "doctor", "--json").Output()
	if err := json.Unmarshal(out, &report); err != nil {
		t.Fatalf("vmm doctor --json: %v", err)
	}
	start := time.Now()
	cmd := exec.Command(vmtest.Binary(t), "run", "--hostname", "demo", ref, "sh", "-c", "echo hi from $(hostname); exit 3")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Run()
	code := cmd.ProcessState.ExitCode()
	t.Logf("vmm run ended with %d after %v", code, time.Since(start).Round(time.Millisecond))
	if report.LinuxGuests {
		if code != 3 || stdout.String() != "hi from demo\n" {
			t.Fatalf("status %d, stdout %q, stderr:\n%s\nwant 3 and %q", code, stdout.String(), stderr.String(), "hi from demo\n")
		}
		return
	}
	if code != 125 || !strings.Contains(stderr.String(), "prepared "+ref) ||
		!strings.Contains(stderr.String(), report.LinuxGuestsReason) || strings.Contains(stderr.String(), "goroutine ") || stdout.Len() != 0 {
		t.Fatalf("status %d, stdout %q, stderr:\n%s\nwant 125 and the doctor's reason after preparing", code, stdout.String(), stderr.String())
	}
}

// busyboxLayout writes the busybox image (Debian's busybox-static) into
// an OCI layout and returns its reference; it skips when the package
// cannot be fetched.
func busyboxLayout(t *testing.T) string {
	t.Helper()
	cache, err := images.CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	img, err := busybox.Image(ctx, cache)
	if errors.Is(err, images.ErrDebDownload) {
		t.Skipf("BUSYBOX PACKAGE UNAVAILABLE, TEST SKIPPED: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "busybox")
	if err := busybox.WriteLayout(dir, "latest", img); err != nil {
		t.Fatal(err)
	}
	return "oci-layout:" + dir + ":latest"
}
