package container

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/guestinit/protocol"
	"github.com/vmm-dev/vmm/vmm"
)

func portsByName(ports []vmm.Port) map[string]vmm.Port {
	m := map[string]vmm.Port{}
	for _, p := range ports {
		m[p.Name] = p
	}
	return m
}

func TestChannel_Ports(t *testing.T) {
	var out, errb bytes.Buffer
	ports := portsByName(NewChannel(nil, &out, &errb, false).Ports())
	if len(ports) != 3 || ports[protocol.PortStdout].Out != &out || ports[protocol.PortStderr].Out != &errb ||
		ports[protocol.PortControl].In == nil || ports[protocol.PortControl].Out == nil {
		t.Fatalf("ports without stdin: %+v", ports)
	}
	in := strings.NewReader("x")
	ports = portsByName(NewChannel(in, &out, &errb, true).Ports())
	if p, ok := ports[protocol.PortStdin]; !ok || p.In != in || len(ports) != 4 {
		t.Fatalf("ports with stdin: %+v", ports)
	}
}

// The guest's control output arrives in whatever pieces the device's
// buffers make: lines are reassembled, bad and overlong ones set aside,
// and the last exit line counts.
func TestChannel_ExitStatusFromPieces(t *testing.T) {
	c := NewChannel(nil, io.Discard, io.Discard, false)
	sink := portsByName(c.Ports())[protocol.PortControl].Out
	if _, ok := c.ExitStatus(); ok {
		t.Fatal("status before any line")
	}
	for _, piece := range []string{"bog", "us\nex", "it 4", strings.Repeat("z", 100), "\nexit", " 42\n", "exit 300\n"} {
		if n, err := sink.Write([]byte(piece)); n != len(piece) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", piece, n, err)
		}
	}
	if st, ok := c.ExitStatus(); !ok || st != 42 {
		t.Fatalf("ExitStatus = %d, %v; want 42", st, ok)
	}
	bad := c.BadLines()
	if len(bad) != 3 || bad[0] != "bogus\n" || bad[1] != "(overlong line)" || bad[2] != "exit 300\n" {
		t.Errorf("BadLines = %q", bad)
	}
}

// Signals and window sizes become control lines the guest reads; Close
// ends the stream, and later messages are refused.
func TestChannel_MessagesToGuest(t *testing.T) {
	c := NewChannel(nil, io.Discard, io.Discard, false)
	in := portsByName(c.Ports())[protocol.PortControl].In
	if err := c.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := c.Resize(50, 132); err != nil {
		t.Fatal(err)
	}
	got := make(chan string)
	go func() {
		b, _ := io.ReadAll(in)
		got <- string(b)
	}()
	time.Sleep(10 * time.Millisecond) // the reader waits for more
	c.Close()
	if s := <-got; s != "signal 15\nwinsize 50 132\n" {
		t.Fatalf("guest read %q", s)
	}
	if err := c.Signal(syscall.SIGINT); !errors.Is(err, ErrChannelClosed) {
		t.Fatalf("Signal after Close: %v", err)
	}
}

// A guest that never reads its control port cannot make the host hold
// messages without bound.
func TestChannel_Backlog(t *testing.T) {
	c := NewChannel(nil, io.Discard, io.Discard, false)
	var err error
	for i := 0; i < 10000 && err == nil; i++ {
		err = c.Resize(1, 1)
	}
	if !errors.Is(err, ErrControlBacklog) {
		t.Fatalf("after many unread messages: %v, want ErrControlBacklog", err)
	}
}

// FuzzChannelControl: whatever a guest writes on its control port, in
// whatever pieces, the host never panics, and it takes an exit status only
// from a well-formed "exit N" line.
func FuzzChannelControl(f *testing.F) {
	f.Add([]byte("exit 0\n"), uint8(3))
	f.Add([]byte("signal 9\nexit 255\nexit 1"), uint8(1))
	f.Add([]byte(strings.Repeat("x", 200)+"\nexit 7\n"), uint8(64))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		c := NewChannel(nil, io.Discard, io.Discard, false)
		sink := portsByName(c.Ports())[protocol.PortControl].Out
		step := int(chunk) + 1
		for i := 0; i < len(data); i += step {
			sink.Write(data[i:min(i+step, len(data))])
		}
		st, ok := c.ExitStatus()
		if !ok {
			return
		}
		if st < 0 || st > 255 || !bytes.Contains(data, []byte(fmt.Sprintf("exit %d\n", st))) {
			t.Fatalf("status %d from %q", st, data)
		}
	})
}
