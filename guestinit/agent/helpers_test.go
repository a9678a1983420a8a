package agent

import (
	"context"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmm-dev/vmm/internal/testprog"
)

// The tests re-execute this test binary in roles chosen by roleEnv: a
// program the agent runs ("program", doing what its arguments say), and
// guestinit's side in a PID namespace of its own ("init",
// reaper_test.go).
const (
	roleEnv   = "VMM_AGENT_TEST_ROLE"
	resultEnv = "VMM_AGENT_TEST_RESULT"
	// noRaceExitWait keeps the race detector from waiting a second at
	// every helper's exit.
	noRaceExitWait = "GORACE=atexit_sleep_ms=0"
)

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "program":
		os.Exit(programMain(os.Args[1:]))
	case "init":
		os.Exit(initMain())
	}
	os.Exit(m.Run())
}

// programEnv is the environment that makes this binary a program.
var programEnv = []string{roleEnv + "=program", noRaceExitWait}

// programArgv is argv running this test binary as a program.
func programArgv(t testing.TB, args ...string) []string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{exe}, args...)
}

// programMain runs one behaviour: testprog.Run's, or
//
//	ignore-stdin exit 0 without reading stdin
//	spam         write lines to stdout until killed
func programMain(args []string) int {
	if status, ok := testprog.Run(args); ok {
		return status
	}
	if len(args) == 0 {
		return 3
	}
	switch args[0] {
	case "ignore-stdin":
		return 0
	case "spam":
		for {
			if _, err := fmt.Println("spam spam spam"); err != nil {
				return 4
			}
		}
	}
	return 3
}

// socketPair returns the two ends of a unix stream socket pair, the
// closest thing here to a port's byte stream.
func socketPair(t testing.TB) (host, guest net.Conn) {
	t.Helper()
	host, guest, err := connPair()
	if err != nil {
		t.Fatal(err)
	}
	return host, guest
}

func connPair() (host, guest net.Conn, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	var conns [2]net.Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		conns[i], err = net.FileConn(f)
		f.Close()
		if err != nil {
			return nil, nil, err
		}
	}
	return conns[0], conns[1], nil
}

// serving is a Serve running on the guest end of a socket pair.
type serving struct {
	client *Client
	done   chan error
}

// serve starts Serve with opts and a Client talking to it; both end with
// the test.
func serve(t testing.TB, opts ServeOptions) *serving {
	t.Helper()
	host, guest := socketPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	s := &serving{client: NewClient(host), done: make(chan error, 1)}
	go func() { s.done <- Serve(ctx, guest, opts) }()
	t.Cleanup(func() {
		s.client.Close()
		cancel()
		guest.Close()
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return within 10s of the end")
		}
	})
	return s
}
