package guestinit

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/vmm-dev/vmm/guestinit/protocol"
	"golang.org/x/sys/unix"
)

// Ports are opened blocking (a write returns once the host has the data)
// and close-on-exec (the workload gets only its stdio).
func TestOpenPort_BlockingAndCloseOnExec(t *testing.T) {
	path := filepath.Join(t.TempDir(), "port")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := openPort(path, os.O_WRONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	conn, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fl, fdfl int
	conn.Control(func(fd uintptr) {
		fl, _ = unix.FcntlInt(fd, unix.F_GETFL, 0)
		fdfl, _ = unix.FcntlInt(fd, unix.F_GETFD, 0)
	})
	if fl&unix.O_NONBLOCK != 0 || fdfl&unix.FD_CLOEXEC == 0 || fl&unix.O_ACCMODE != unix.O_WRONLY {
		t.Errorf("flags %#x, fd flags %#x: want blocking, write-only, close-on-exec", fl, fdfl)
	}
	if _, err := openPort(filepath.Join(t.TempDir(), "none"), os.O_RDONLY); err == nil {
		t.Error("a missing port opened")
	}
}

func TestNeedPorts_StdinWithIOrT(t *testing.T) {
	base := []string{protocol.PortStdout, protocol.PortStderr, protocol.PortControl}
	withStdin := append(slices.Clone(base), protocol.PortStdin)
	for _, tt := range []struct {
		cfg   protocol.RunConfig
		known bool
		want  []string
	}{
		{protocol.RunConfig{}, true, base},
		{protocol.RunConfig{Interactive: true}, true, withStdin},
		{protocol.RunConfig{TTY: true}, true, withStdin},
		{protocol.RunConfig{Interactive: true}, false, base},
	} {
		if got := needPorts(tt.cfg, tt.known); !slices.Equal(got, tt.want) {
			t.Errorf("needPorts(%+v, %v) = %v, want %v", tt.cfg, tt.known, got, tt.want)
		}
	}
}
