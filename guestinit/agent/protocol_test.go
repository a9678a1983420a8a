package agent

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestMessages_RoundTrip(t *testing.T) {
	exec := ExecRequest{Argv: []string{"sh", "-c", "echo \x00 é"}, Env: []string{"A=1", ""}, Dir: "/srv", User: "app:staff", Stdin: true}
	if got, err := ParseExecRequest(exec.Marshal()); err != nil || !reflect.DeepEqual(got, exec) {
		t.Errorf("exec: %+v, %v", got, err)
	}
	empty := ExecRequest{Argv: []string{}, Env: []string{}}
	if got, err := ParseExecRequest(empty.Marshal()); err != nil || !reflect.DeepEqual(got, empty) {
		t.Errorf("empty exec: %+v, %v", got, err)
	}
	x := Exit{Status: 127, Message: "not found"}
	if got, err := ParseExit(x.Marshal()); err != nil || got != x {
		t.Errorf("exit: %+v, %v", got, err)
	}
	put := PutRequest{Path: "/a/b", Mode: 0o755}
	if got, err := ParsePutRequest(put.Marshal()); err != nil || got != put {
		t.Errorf("put: %+v, %v", got, err)
	}
	eb := ErrorBody{Code: CodeNotExist, Message: "gone"}
	if got, err := ParseError(eb.Marshal()); err != nil || got != eb {
		t.Errorf("error: %+v, %v", got, err)
	}
	if got, err := ParseAck(MarshalAck(1 << 20)); err != nil || got != 1<<20 {
		t.Errorf("ack: %d, %v", got, err)
	}
	f := Frame{ID: 0xdeadbeef, Type: TypeStdout, Body: []byte("data")}
	p, err := f.Payload()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ParseFrame(p); err != nil || !reflect.DeepEqual(got, f) {
		t.Errorf("frame: %+v, %v", got, err)
	}
}

func TestMessages_Malformed_Refused(t *testing.T) {
	u32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, tt := range []struct {
		name  string
		parse func([]byte) error
		body  []byte
	}{
		{"exec empty", func(b []byte) error { _, err := ParseExecRequest(b); return err }, nil},
		{"exec unknown flag", func(b []byte) error { _, err := ParseExecRequest(b); return err }, cat([]byte{2}, u32(0), u32(0), u32(0), u32(0))},
		{"exec huge argc", func(b []byte) error { _, err := ParseExecRequest(b); return err }, cat([]byte{0}, u32(0), u32(0), u32(0xffffffff))},
		{"exec string past end", func(b []byte) error { _, err := ParseExecRequest(b); return err }, cat([]byte{0}, u32(100), []byte("ab"))},
		{"exec trailing bytes", func(b []byte) error { _, err := ParseExecRequest(b); return err }, cat(ExecRequest{Argv: []string{"x"}}.Marshal(), []byte{0})},
		{"exit status 256", func(b []byte) error { _, err := ParseExit(b); return err }, cat(u32(256), u32(0))},
		{"put mode type bits", func(b []byte) error { _, err := ParsePutRequest(b); return err }, cat(u32(0o40755), u32(0))},
		{"ack short", func(b []byte) error { _, err := ParseAck(b); return err }, []byte{1, 2}},
		{"empty with body", func(b []byte) error { return ParseEmpty(TypeOK, b) }, []byte{1}},
	} {
		if err := tt.parse(tt.body); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", tt.name, err)
		}
	}
	for _, n := range []int{0, 4, MaxFrame + 1} {
		if _, err := ParseFrame(make([]byte, n)); !errors.Is(err, ErrFrameSize) {
			t.Errorf("ParseFrame of %d bytes: %v, want ErrFrameSize", n, err)
		}
	}
}

func TestFrameReader_Lengths(t *testing.T) {
	stream := func(n uint32, body []byte) []byte {
		return append(binary.LittleEndian.AppendUint32(nil, n), body...)
	}
	for _, tt := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, io.EOF},
		{"short prefix", []byte{1, 2}, io.ErrUnexpectedEOF},
		{"too small", stream(4, []byte{1, 2, 3, 4}), ErrFrameSize},
		{"too large", stream(MaxFrame+1, nil), ErrFrameSize},
		{"4 GiB", stream(0xffffffff, nil), ErrFrameSize},
		{"cut short", stream(10, []byte{1, 2, 3}), io.ErrUnexpectedEOF},
	} {
		_, err := NewFrameReader(bytes.NewReader(tt.in)).Next()
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
}

// rawGuest is a Serve driven with raw bytes.
type rawGuest struct {
	host net.Conn
	fr   *FrameReader
	done chan error
}

func rawServe(t *testing.T, opts ServeOptions) *rawGuest {
	t.Helper()
	host, guest := socketPair(t)
	t.Cleanup(func() { host.Close(); guest.Close() })
	g := &rawGuest{host: host, fr: NewFrameReader(host), done: make(chan error, 1)}
	go func() { g.done <- Serve(context.Background(), guest, opts) }()
	return g
}

func (g *rawGuest) send(t *testing.T, f Frame) {
	t.Helper()
	if _, err := g.host.Write(AppendStream(nil, f.Append(nil))); err != nil {
		t.Fatal(err)
	}
}

func (g *rawGuest) next(t *testing.T) Frame {
	t.Helper()
	g.host.SetReadDeadline(time.Now().Add(10 * time.Second))
	p, err := g.fr.Next()
	if err != nil {
		t.Fatalf("read a reply: %v", err)
	}
	f, err := ParseFrame(p)
	if err != nil {
		t.Fatal(err)
	}
	f.Body = append([]byte(nil), f.Body...)
	return f
}

func (g *rawGuest) expectError(t *testing.T, id uint32, code Code, msg string) {
	t.Helper()
	f := g.next(t)
	eb, err := ParseError(f.Body)
	if f.ID != id || f.Type != TypeError || err != nil || eb.Code != code || !strings.Contains(eb.Message, msg) {
		t.Fatalf("reply %d %s %+v (%v); want Error %d for %d saying %q", f.ID, f.Type, eb, err, code, id, msg)
	}
}

// Malformed requests get an Error and Serve goes on; frames for requests
// not in flight are dropped; a length out of range ends Serve.
func TestServe_MalformedFrames_RefusedWithoutPanic(t *testing.T) {
	// The guest's own root, for cat; files go to a directory of the test's.
	g := rawServe(t, ServeOptions{})
	dir := t.TempDir()
	g.send(t, Frame{ID: 1, Type: TypeExec, Body: []byte{9}})
	g.expectError(t, 1, CodeInvalid, "malformed")
	g.send(t, Frame{ID: 2, Type: TypeStdout, Body: []byte("x")})
	g.expectError(t, 2, CodeInvalid, "not a frame the host sends")
	g.send(t, Frame{ID: 3, Type: Type(0xee)})
	g.expectError(t, 3, CodeInvalid, "Type(0xee)")
	g.send(t, Frame{ID: 4, Type: TypePowerOff, Body: []byte{1}})
	g.expectError(t, 4, CodeInvalid, "malformed")
	// Data, ends and cancels of no request in flight: dropped, silently.
	g.send(t, Frame{ID: 5, Type: TypeStdin, Body: []byte("x")})
	g.send(t, Frame{ID: 5, Type: TypePutEnd})
	g.send(t, Frame{ID: 5, Type: TypeCancel})
	// A Stdin frame for a Put request fails that request only.
	g.send(t, Frame{ID: 6, Type: TypePut, Body: PutRequest{Path: dir + "/f", Mode: 0o644}.Marshal()})
	g.send(t, Frame{ID: 6, Type: TypeStdin, Body: []byte("x")})
	// A Get still works, and its answer is the next frame.
	g.send(t, Frame{ID: 7, Type: TypeGet, Body: MarshalPath(dir + "/missing")})
	g.expectError(t, 7, CodeNotExist, "no such file")
	// A request id in use is refused without disturbing its owner.
	g.send(t, Frame{ID: 8, Type: TypeExec, Body: ExecRequest{Argv: []string{"cat"}, Stdin: true}.Marshal()})
	g.send(t, Frame{ID: 8, Type: TypeGet, Body: MarshalPath("/x")})
	g.expectError(t, 8, CodeBusy, "in use")
	g.send(t, Frame{ID: 8, Type: TypeStdin, Body: []byte("hi")})
	g.send(t, Frame{ID: 8, Type: TypeStdinEnd})
	var got []Type
	for len(got) == 0 || got[len(got)-1] != TypeExit {
		f := g.next(t)
		if f.ID != 8 {
			t.Fatalf("frame %d %s, want only request 8's", f.ID, f.Type)
		}
		got = append(got, f.Type)
		if f.Type == TypeStdout && string(f.Body) != "hi" {
			t.Errorf("stdout %q", f.Body)
		}
	}
	// An oversize length prefix: Serve stops, before allocating for it.
	if _, err := g.host.Write(binary.LittleEndian.AppendUint32(nil, 1<<31)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-g.done:
		if !errors.Is(err, ErrFrameSize) {
			t.Errorf("Serve = %v, want ErrFrameSize", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve still running after an oversize frame")
	}
}

// With RetryEOF, the end of the stream is a host that went away: Serve
// drops a partial frame and carries on with the next host.
func TestServe_RetryEOF_NextHostServed(t *testing.T) {
	r1, w1 := io.Pipe()
	r2, w2 := io.Pipe()
	in := &switchingReader{rs: []io.Reader{r1, r2}}
	outR, outW := io.Pipe()
	rw := struct {
		io.Reader
		io.Writer
	}{in, outW}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, rw, ServeOptions{RetryEOF: time.Millisecond}) }()
	// The first host leaves half a frame.
	w1.Write(AppendStream(nil, Frame{ID: 1, Type: TypeGet, Body: MarshalPath("/nope")}.Append(nil))[:7])
	w1.Close()
	// The second asks properly.
	go w2.Write(AppendStream(nil, Frame{ID: 2, Type: TypeGet, Body: MarshalPath("/no/such/file")}.Append(nil)))
	p, err := NewFrameReader(outR).Next()
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := ParseFrame(p); f.ID != 2 || f.Type != TypeError {
		t.Errorf("reply %d %s, want request 2's Error", f.ID, f.Type)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Serve = %v, want context.Canceled", err)
	}
	w2.Close()
}

// switchingReader reads each reader in turn, returning EOF at the end of
// each, as a port does between hosts.
type switchingReader struct{ rs []io.Reader }

func (s *switchingReader) Read(p []byte) (int, error) {
	if len(s.rs) == 0 {
		time.Sleep(time.Millisecond)
		return 0, io.EOF
	}
	n, err := s.rs[0].Read(p)
	if errors.Is(err, io.EOF) {
		s.rs = s.rs[1:]
	}
	return n, err
}

// fakeGuest answers a Client with raw frames.
func fakeGuest(t *testing.T) (*Client, net.Conn) {
	t.Helper()
	host, guest := socketPair(t)
	c := NewClient(host)
	t.Cleanup(func() { c.Close(); guest.Close() })
	return c, guest
}

// readRequest reads the client's next frame at the guest.
func readRequest(t *testing.T, fr *FrameReader) Frame {
	t.Helper()
	p, err := fr.Next()
	if err != nil {
		t.Fatal(err)
	}
	f, _ := ParseFrame(p)
	f.Body = append([]byte(nil), f.Body...)
	return f
}

// Frames of ids not in flight are dropped; a frame that does not fit its
// request fails that request only; an oversize length fails everything.
func TestClient_GuestFrames_IgnoredRefusedOrFatal(t *testing.T) {
	c, guest := fakeGuest(t)
	fr := NewFrameReader(guest)
	send := func(f Frame) {
		if _, err := guest.Write(AppendStream(nil, f.Append(nil))); err != nil {
			t.Fatal(err)
		}
	}
	var stdout bytes.Buffer
	result := make(chan error, 1)
	go func() {
		status, err := c.Exec(context.Background(), Cmd{Argv: []string{"x"}, Stdout: &stdout})
		if err == nil && status != 5 {
			err = errors.New("wrong status")
		}
		result <- err
	}()
	req := readRequest(t, fr)
	send(Frame{ID: req.ID + 1, Type: TypeStdout, Body: []byte("someone else's")})
	send(Frame{ID: req.ID - 1, Type: TypeExit, Body: Exit{Status: 1}.Marshal()})
	send(Frame{ID: req.ID, Type: TypeStdout, Body: []byte("mine")})
	send(Frame{ID: req.ID, Type: TypeExit, Body: Exit{Status: 5}.Marshal()})
	if err := <-result; err != nil || stdout.String() != "mine" {
		t.Fatalf("Exec: %v, stdout %q", err, &stdout)
	}

	go func() { result <- c.GetFile(context.Background(), "/f", io.Discard) }()
	req = readRequest(t, fr)
	send(Frame{ID: req.ID, Type: TypeExit, Body: Exit{Status: 0}.Marshal()}) // an Exit for a Get
	if err := <-result; !errors.Is(err, ErrMalformed) {
		t.Fatalf("GetFile answered with an Exit: %v, want ErrMalformed", err)
	}
	if f := readRequest(t, fr); f.ID != req.ID || f.Type != TypeCancel {
		t.Errorf("after a bad answer the client sent %d %s, want a Cancel", f.ID, f.Type)
	}

	go func() { result <- c.GetFile(context.Background(), "/f", io.Discard) }()
	readRequest(t, fr)
	guest.Write(binary.LittleEndian.AppendUint32(nil, MaxFrame+1))
	if err := <-result; err == nil || errors.Is(err, ErrClosed) {
		t.Fatalf("GetFile after an oversize frame: %v, want a read error", err)
	}
	if err := c.GetFile(context.Background(), "/f", io.Discard); err == nil {
		t.Error("a request after the connection failed succeeded")
	}
}

func TestRemoteError_Is(t *testing.T) {
	for code, target := range map[Code]error{CodeNotExist: fs.ErrNotExist, CodePermission: fs.ErrPermission, CodeInvalid: fs.ErrInvalid, CodeBusy: ErrBusy} {
		if err := error(&RemoteError{Code: code}); !errors.Is(err, target) {
			t.Errorf("code %d does not match %v", code, target)
		}
	}
	if errors.Is(&RemoteError{Code: CodeOther}, fs.ErrNotExist) {
		t.Error("CodeOther matches fs.ErrNotExist")
	}
}
