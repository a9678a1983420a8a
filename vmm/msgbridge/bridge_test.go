package msgbridge

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/guestinit/agent"
)

// newBridge listens in a temporary directory; the bridge closes with the
// test.
func newBridge(t *testing.T) *Bridge {
	t.Helper()
	b, err := Listen(filepath.Join(t.TempDir(), "agent.sock"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// loopGuest is the guest's end of the port as the console device drives
// it: In read into buffers of the device's size, Out written in pieces of
// whatever size the guest's buffers had; here it writes back what it
// reads, in random pieces.
func loopGuest(t *testing.T, b *Bridge) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		rng := rand.New(rand.NewPCG(1, 2))
		buf := make([]byte, 32<<10)
		for {
			n, err := b.In().Read(buf)
			for p := buf[:n]; len(p) > 0; {
				k := min(len(p), 1+rng.IntN(8<<10))
				b.Out().Write(p[:k])
				p = p[k:]
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { b.Close(); <-done })
}

func dial(t *testing.T, b *Bridge) *net.UnixConn {
	t.Helper()
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: b.Path(), Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dataFrame is the payload of frame seq of request id: PutData whose
// bytes say where they belong, so a partial or misplaced one shows.
func dataFrame(id uint32, seq, size int) []byte {
	body := make([]byte, size)
	for i := range body {
		body[i] = byte(seq*31 + i*7 + int(id))
	}
	binary.LittleEndian.PutUint32(body, uint32(seq))
	return agent.Frame{ID: id, Type: agent.TypePutData, Body: body}.Append(nil)
}

// checkFrame verifies a received message is one whole dataFrame and
// returns its id and sequence number.
func checkFrame(t *testing.T, msg []byte) (id uint32, seq int) {
	t.Helper()
	f, err := agent.ParseFrame(msg)
	if err != nil || f.Type != agent.TypePutData || len(f.Body) < 4 {
		t.Fatalf("message of %d bytes is not a data frame: %v", len(msg), err)
	}
	seq = int(binary.LittleEndian.Uint32(f.Body))
	if want := dataFrame(f.ID, seq, len(f.Body)); !bytes.Equal(msg, want) {
		t.Fatalf("frame %d of request %d (%d bytes) is damaged", seq, f.ID, len(f.Body))
	}
	return f.ID, seq
}

func TestBridge_Loopback_10MiB_BothWays(t *testing.T) {
	b := newBridge(t)
	loopGuest(t, b)
	c := dial(t, b)
	const total = 10 << 20
	sent, got := sha256.New(), sha256.New()
	go func() {
		for seq, n := 0, 0; n < total; seq++ {
			f := dataFrame(7, seq, min(agent.MaxData, total-n))
			sent.Write(f)
			if _, err := c.Write(f); err != nil {
				t.Error(err)
				return
			}
			n += len(f) - 5
		}
	}()
	buf := make([]byte, agent.MaxFrame+1)
	c.SetReadDeadline(time.Now().Add(time.Minute))
	for seq, n := 0, 0; n < total; seq++ {
		m, err := c.Read(buf)
		if err != nil {
			t.Fatalf("after %d bytes: %v", n, err)
		}
		if _, s := checkFrame(t, buf[:m]); s != seq {
			t.Fatalf("frame %d came as number %d", s, seq)
		}
		got.Write(buf[:m])
		n += m - 5
	}
	if !bytes.Equal(sent.Sum(nil), got.Sum(nil)) {
		t.Error("the frames came back with a different sha256")
	}
	if st := b.Stats(); st.Dropped != 0 || st.Skipped != 0 || st.Refused != 0 || st.ToGuest != st.FromGuest {
		t.Errorf("stats %+v", st)
	}
}

// A client that leaves in the middle of a stream, with frames in flight
// both ways, leaves only whole frames: the next client gets whole frames
// (an earlier request's among them, which it tells apart by id) and all of
// its own, in order.
func TestBridge_ClientLeavesMidStream_NextClientWorks(t *testing.T) {
	b := newBridge(t)
	loopGuest(t, b)
	first := dial(t, b)
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		for seq := range 200 {
			if _, err := first.Write(dataFrame(1, seq, 10_000+seq)); err != nil {
				return // closed meanwhile
			}
		}
	}()
	// Read a little, then go while frames are in flight both ways.
	buf := make([]byte, agent.MaxFrame+1)
	for range 3 {
		if _, err := first.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	first.Close()
	<-wrote

	second := dial(t, b)
	const frames = 300
	go func() {
		for seq := range frames {
			if _, err := second.Write(dataFrame(2, seq, 4+seq*997%(agent.MaxData-4))); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	second.SetReadDeadline(time.Now().Add(time.Minute))
	next, others := 0, 0
	for next < frames {
		n, err := second.Read(buf)
		if err != nil {
			t.Fatalf("after %d frames: %v", next, err)
		}
		id, seq := checkFrame(t, buf[:n])
		switch {
		case id == 1:
			others++
		case seq != next:
			t.Fatalf("frame %d came as number %d", seq, next)
		default:
			next++
		}
	}
	t.Logf("the second client got %d whole frames of the first's", others)
}

// The bridge serves one client at a time: a second waits in the backlog
// and is served once the first leaves.
func TestBridge_SecondClientWaitsForTheFirst(t *testing.T) {
	b := newBridge(t)
	loopGuest(t, b)
	first := dial(t, b)
	roundTrip := func(c *net.UnixConn, id uint32) error {
		if _, err := c.Write(dataFrame(id, 0, 100)); err != nil {
			return err
		}
		buf := make([]byte, agent.MaxFrame+1)
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			return err
		}
		if got, _ := checkFrame(t, buf[:n]); got != id {
			return errors.New("someone else's frame")
		}
		return nil
	}
	if err := roundTrip(first, 1); err != nil {
		t.Fatal(err)
	}
	second := dial(t, b)
	done := make(chan error, 1)
	go func() { done <- roundTrip(second, 2) }()
	select {
	case err := <-done:
		t.Fatalf("the second client was served while the first was connected (%v)", err)
	case <-time.After(200 * time.Millisecond):
	}
	first.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A client message that is no frame disconnects that client; nothing of
// it reaches the guest, and the next client is served.
func TestBridge_BadClientMessage_Refused(t *testing.T) {
	b := newBridge(t)
	var guest bytes.Buffer
	var mu sync.Mutex
	go func() {
		buf := make([]byte, 1<<16)
		for {
			n, err := b.In().Read(buf)
			mu.Lock()
			guest.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	for _, msg := range [][]byte{make([]byte, agent.MaxFrame+1), {1, 2, 3}} {
		c := dial(t, b)
		c.Write(msg)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 16)); !errors.Is(err, io.EOF) {
			t.Errorf("a %d-byte message: read %v, want EOF (disconnected)", len(msg), err)
		}
		c.Close()
	}
	c := dial(t, b)
	good := dataFrame(3, 0, 10)
	c.Write(good)
	want := agent.AppendStream(nil, good)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		mu.Lock()
		got := append([]byte(nil), guest.Bytes()...)
		mu.Unlock()
		if bytes.Equal(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the guest got %x, want only %x", got, want)
		}
	}
	if st := b.Stats(); st.Refused != 2 || st.ToGuest != 1 {
		t.Errorf("stats %+v, want 2 refused and 1 frame to the guest", st)
	}
}

// Frames from the guest with nobody connected are dropped; one with a
// length out of range is skipped, and the frames after it still pass.
func TestBridge_GuestFrames_DroppedOrSkipped(t *testing.T) {
	b := newBridge(t)
	b.Out().Write(agent.AppendStream(nil, dataFrame(1, 0, 10)))
	c := dial(t, b)
	// Connected once it has been accepted: a frame goes through then.
	for deadline := time.Now().Add(10 * time.Second); b.Stats().Clients == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("never accepted")
		}
	}
	var stream []byte
	stream = binary.LittleEndian.AppendUint32(stream, agent.MaxFrame+10)
	stream = append(stream, make([]byte, agent.MaxFrame+10)...)
	stream = append(stream, 3, 0, 0, 0, 1, 2, 3) // too short for a header
	stream = agent.AppendStream(stream, dataFrame(2, 5, 1000))
	b.Out().Write(stream)
	buf := make([]byte, agent.MaxFrame+1)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if id, seq := checkFrame(t, buf[:n]); id != 2 || seq != 5 {
		t.Errorf("got frame %d of %d, want 5 of 2", seq, id)
	}
	if st := b.Stats(); st.Dropped != 1 || st.Skipped != 2 || st.FromGuest != 2 {
		t.Errorf("stats %+v, want 1 dropped, 2 skipped, 2 from the guest", st)
	}
}

func TestListen_SocketFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.sock")
	b, err := Listen(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket file: %v, %v; want a socket with mode 0600", fi.Mode(), err)
	}
	if _, err := Listen(path, Options{}); !errors.Is(err, ErrInUse) {
		t.Errorf("a second Listen on a live socket: %v, want ErrInUse", err)
	}
	got := make(chan error, 1)
	go func() { _, err := b.In().Read(make([]byte, 1)); got <- err }()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-got; !errors.Is(err, io.EOF) {
		t.Errorf("In after Close: %v, want EOF", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after Close: %v", err)
	}

	// A stale socket, left by a process that died, is replaced.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	b, err = Listen(path, Options{})
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	b.Close()

	// Anything else is never clobbered.
	if err := os.WriteFile(path, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(path, Options{}); !errors.Is(err, ErrNotSocket) {
		t.Errorf("Listen over a regular file: %v, want ErrNotSocket", err)
	}
	if data, _ := os.ReadFile(path); string(data) != "precious" {
		t.Errorf("the file was changed: %q", data)
	}
}
