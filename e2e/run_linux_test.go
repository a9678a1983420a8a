package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The Linux tier of vmm run: the busybox image under vmm with Debian's
// kernel, end to end through the CLI. It runs where vmm doctor says Linux
// guests can (hardware virtualization) and skips with its reason
// elsewhere; the guest side of all of it also runs under QEMU's emulator
// in run_qemu_test.go.

const runLinuxTimeout = 60 * time.Second

// vmmRunLinux runs `vmm run ARGS` with stdin and returns stdout, stderr
// and the exit status.
func vmmRunLinux(t *testing.T, bin string, stdin []byte, args ...string) (stdout, stderr []byte, code int) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"run"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(stdin), &out, &errb
	done := make(chan struct{})
	go func() { cmd.Run(); close(done) }()
	select {
	case <-done:
	case <-time.After(runLinuxTimeout):
		cmd.Process.Kill()
		<-done
		t.Fatalf("vmm run %q still running after %v; stderr:\n%s", args, runLinuxTimeout, errb.String())
	}
	return out.Bytes(), errb.Bytes(), cmd.ProcessState.ExitCode()
}

func TestLinux_VMM_Run_ExitStatuses(t *testing.T) {
	bin := requireLinuxGuests(t)
	ref := busyboxLayout(t)
	for _, c := range []struct {
		script string
		want   int
	}{{"exit 0", 0}, {"exit 1", 1}, {"exit 42", 42}, {"kill -TERM $$", 143}, {"kill -KILL $$", 137}} {
		_, stderr, code := vmmRunLinux(t, bin, nil, ref, "sh", "-c", c.script)
		if code != c.want {
			t.Errorf("sh -c %q: status %d, want %d; stderr:\n%s", c.script, code, c.want, stderr)
		}
	}
}

// Env, working directory, user and entrypoint overrides, and stdout and
// stderr kept apart.
func TestLinux_VMM_Run_Overrides(t *testing.T) {
	bin := requireLinuxGuests(t)
	ref := busyboxLayout(t)
	stdout, stderr, code := vmmRunLinux(t, bin, nil, "-e", "GREETING=hello world", "-w", "/tmp/work", "-u", "app",
		"--hostname", "box", ref, "sh", "-c", `echo "$GREETING"; pwd; id -u; id -g; hostname; echo to-stderr >&2`)
	want := "hello world\n/tmp/work\n1000\n1000\nbox\n"
	if code != 0 || string(stdout) != want || string(stderr) != "to-stderr\n" {
		t.Fatalf("status %d\nstdout %q, want %q\nstderr %q, want %q", code, stdout, want, stderr, "to-stderr\n")
	}
	stdout, stderr, code = vmmRunLinux(t, bin, nil, "--entrypoint", "/bin/echo", ref, "from", "echo")
	if code != 0 || string(stdout) != "from echo\n" {
		t.Fatalf("--entrypoint: status %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
}

// A binary stream through stdin and back out is byte-exact.
func TestLinux_VMM_Run_BinaryStdio(t *testing.T) {
	bin := requireLinuxGuests(t)
	ref := busyboxLayout(t)
	in := randomBytes(t, 1<<20)
	stdout, stderr, code := vmmRunLinux(t, bin, in, "-i", ref, "cat")
	if code != 0 || !bytes.Equal(stdout, in) {
		t.Fatalf("status %d; stdout %d bytes sha256 %s, want %d bytes sha256 %s; stderr:\n%s",
			code, len(stdout), sha256Hex(stdout), len(in), sha256Hex(in), stderr)
	}
}

// A real server program (busybox httpd) in the image, reached over a TAP
// inside a test network namespace, then stopped by SIGTERM to vmm run.
func TestLinux_VMM_Run_ServerOverTAP(t *testing.T) {
	bin := requireLinuxGuests(t)
	ref := busyboxLayout(t)
	ns := newNetns(t, "tap0", "10.0.3.1/24")
	script := "mkdir -p /srv && head -c 65536 /dev/urandom > /srv/blob && sha256sum /srv/blob && exec httpd -f -p 8080 -h /srv"
	cmd := exec.Command("ip", "netns", "exec", ns, bin, "run", "--net", "tap=tap0,ip=10.0.3.2/24", ref, "sh", "-c", script)
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	deadline := time.Now().Add(runLinuxTimeout)
	for !strings.Contains(stdout.String(), "/srv/blob") {
		if time.Now().After(deadline) {
			t.Fatalf("no checksum line from the workload; stderr:\n%s", stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	want, _, _ := strings.Cut(stdout.String(), " ")
	var body []byte
	var err error
	for time.Now().Before(deadline) {
		if body, err = httpGetInNetns(ns, "10.0.3.2:8080", "/blob"); err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("GET /blob: %v; stderr:\n%s", err, stderr)
	}
	if got := sha256Hex(body); got != want {
		t.Errorf("served %d bytes with sha256 %s, the guest's file has %s", len(body), got, want)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	err = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 143 {
		t.Errorf("after SIGTERM vmm run exited %d (%v), want 143; stderr:\n%s", code, err, stderr)
	}
}

// httpGetInNetns sends one HTTP/1.0 GET from inside ns and returns the body
// of a 200 response.
func httpGetInNetns(ns, addr, path string) ([]byte, error) {
	var resp []byte
	err := inNetns(ns, func() error {
		conn, err := net.DialTimeout("tcp4", addr, 5*time.Second)
		if err != nil {
			return err
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.0\r\n\r\n", path); err != nil {
			return err
		}
		var b bytes.Buffer
		_, err = b.ReadFrom(conn)
		resp = b.Bytes()
		return err
	})
	if err != nil {
		return nil, err
	}
	head, body, ok := bytes.Cut(resp, []byte("\r\n\r\n"))
	if !ok || !bytes.HasPrefix(head, []byte("HTTP/1.")) || !bytes.Contains(bytes.SplitN(head, []byte("\r\n"), 2)[0], []byte(" 200")) {
		return nil, fmt.Errorf("response %q", head)
	}
	return body, nil
}
