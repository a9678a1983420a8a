package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/vmm-dev/vmm/vmm"
	"github.com/vmm-dev/vmm/vmtest"
)

// TestVirtioConsole_Ports has a guest drive the multiport console as Linux
// does (DEVICE_READY, PORT_ADD/PORT_READY, names, opens), write a line and
// 256 binary bytes on "vmm.stdout" and a line on "vmm.stderr", and read
// "vmm.stdin" until the host's end closes: the channel `vmm run` carries a
// workload's stdio on. stdout and stderr must arrive separately and byte
// for byte, and stdin whole, apart from the serial console.
func TestVirtioConsole_Ports(t *testing.T) {
	kernel := guest(t, "vconsole")
	dir := t.TempDir()
	in, out, errf := filepath.Join(dir, "in"), filepath.Join(dir, "out"), filepath.Join(dir, "err")
	if err := os.WriteFile(in, []byte("typed on the host"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := vmtest.Run(t, vmtest.Config{Kernel: kernel, Memory: "32M", Args: []string{"--rng=false",
		"--port", "vmm.stdin,in=" + in, "--port", "vmm.stdout,out=" + out, "--port", "vmm.stderr,out=" + errf}}, guestTimeout)
	want := "vconsole: features ok\n" +
		"vconsole: port 0 vmm.stdin open\n" +
		"vconsole: port 1 vmm.stdout open\n" +
		"vconsole: port 2 vmm.stderr open\n" +
		"vconsole: stdout and stderr written\n" +
		"vconsole: stdin got 17 bytes: typed on the host\n"
	if res.Console != want || res.Code != vmm.StatusGuestOff {
		t.Errorf("status %d, console:\n%s\nwant 0 and:\n%s\nstderr:\n%s", res.Code, res.Console, want, res.Stderr)
	}
	wantOut := []byte("hello on stdout\n")
	for i := range 256 {
		wantOut = append(wantOut, byte(i))
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, wantOut) {
		t.Errorf("vmm.stdout carried % x, want % x", got, wantOut)
	}
	if got, _ := os.ReadFile(errf); string(got) != "hello on stderr\n" {
		t.Errorf("vmm.stderr carried %q, want %q", got, "hello on stderr\n")
	}
}
