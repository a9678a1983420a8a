package agent

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os/exec"
	"reflect"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// seedFrames are one valid payload of every type, and a few that are not.
func seedFrames() [][]byte {
	var seeds [][]byte
	add := func(t Type, body []byte) { seeds = append(seeds, Frame{ID: 1, Type: t, Body: body}.Append(nil)) }
	add(TypeExec, ExecRequest{Argv: []string{"sh", "-c", "echo hi"}, Env: []string{"A=1"}, Dir: "/", User: "0:0", Stdin: true}.Marshal())
	add(TypeStdin, []byte("input"))
	add(TypeStdinEnd, nil)
	add(TypePut, PutRequest{Path: "/f", Mode: 0o644}.Marshal())
	add(TypePutData, []byte("contents"))
	add(TypePutEnd, nil)
	add(TypeGet, MarshalPath("/f"))
	add(TypeCancel, nil)
	add(TypePowerOff, nil)
	add(TypeStdout, []byte("out"))
	add(TypeStderr, []byte("err"))
	add(TypeExit, Exit{Status: 127, Message: "not found"}.Marshal())
	add(TypeGetData, []byte("data"))
	add(TypeOK, nil)
	add(TypeError, ErrorBody{Code: CodeNotExist, Message: "gone"}.Marshal())
	add(TypeAck, MarshalAck(4096))
	add(TypeExec, []byte{0, 0xff, 0xff, 0xff, 0xff})
	add(Type(0x7f), []byte{1, 2, 3})
	seeds = append(seeds, []byte{1, 2, 3})
	return seeds
}

// FuzzParseFrame: every parser of a payload either refuses it with an
// error or accepts it; what it accepts encodes back to the same bytes.
func FuzzParseFrame(f *testing.F) {
	for _, s := range seedFrames() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		fr, err := ParseFrame(p)
		if err != nil {
			return
		}
		if got := fr.Append(nil); !bytes.Equal(got, p) {
			t.Fatalf("frame re-encodes as %x, want %x", got, p)
		}
		b := fr.Body
		var re []byte
		switch fr.Type {
		case TypeExec:
			r, err := ParseExecRequest(b)
			if err != nil {
				return
			}
			re = r.Marshal()
			if r2, err := ParseExecRequest(re); err != nil || !reflect.DeepEqual(r, r2) {
				t.Fatalf("exec request %+v re-parses as %+v, %v", r, r2, err)
			}
		case TypeExit:
			x, err := ParseExit(b)
			if err != nil {
				return
			}
			re = x.Marshal()
		case TypePut:
			r, err := ParsePutRequest(b)
			if err != nil {
				return
			}
			re = r.Marshal()
		case TypeGet:
			p, err := ParsePath(b)
			if err != nil {
				return
			}
			re = MarshalPath(p)
		case TypeError:
			eb, err := ParseError(b)
			if err != nil {
				return
			}
			re = eb.Marshal()
		case TypeAck:
			n, err := ParseAck(b)
			if err != nil {
				return
			}
			re = MarshalAck(n)
		default:
			if ParseEmpty(fr.Type, b) == nil {
				re = b
			} else {
				return
			}
		}
		if !bytes.Equal(re, b) {
			t.Fatalf("%s body re-encodes as %x, want %x", fr.Type, re, b)
		}
	})
}

// FuzzFrameReader: a stream of any bytes yields frames within bounds, or
// an error, never a panic or an allocation a length prefix asked for.
func FuzzFrameReader(f *testing.F) {
	var all []byte
	for _, s := range seedFrames() {
		f.Add(AppendStream(nil, s))
		all = AppendStream(all, s)
	}
	f.Add(all)
	f.Add(binary.LittleEndian.AppendUint32(nil, 0xffffffff))
	f.Fuzz(func(t *testing.T, stream []byte) {
		fr := NewFrameReader(bytes.NewReader(stream))
		for {
			p, err := fr.Next()
			if err != nil {
				if cap(fr.buf) > MaxFrame {
					t.Fatalf("buffer of %d bytes", cap(fr.buf))
				}
				return
			}
			if len(p) < headerLen || len(p) > MaxFrame {
				t.Fatalf("frame of %d bytes", len(p))
			}
		}
	})
}

// refuseStart keeps the fuzzed server from running anything.
func refuseStart(*exec.Cmd) (func() (unix.WaitStatus, error), error) {
	return nil, errors.New("not in a fuzz test")
}

// FuzzServe: Serve takes any byte stream from the host without a panic
// and returns at its end, having answered what it could.
func FuzzServe(f *testing.F) {
	var all []byte
	for _, s := range seedFrames() {
		f.Add(AppendStream(nil, s))
		all = AppendStream(all, s)
	}
	f.Add(all)
	root := f.TempDir()
	f.Fuzz(func(t *testing.T, stream []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rw := struct {
			io.Reader
			io.Writer
		}{bytes.NewReader(stream), io.Discard}
		err := Serve(ctx, rw, ServeOptions{Root: root, Start: refuseStart})
		if err != nil && !errors.Is(err, ErrFrameSize) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("Serve = %v", err)
		}
	})
}

// FuzzClient: a Client with requests in flight takes any byte stream from
// the guest without a panic; its calls end.
func FuzzClient(f *testing.F) {
	for _, s := range seedFrames() {
		f.Add(AppendStream(nil, s))
	}
	two := Frame{ID: 2, Type: TypeGetData, Body: []byte("x")}.Append(nil)
	f.Add(AppendStream(AppendStream(nil, two), Frame{ID: 2, Type: TypeOK}.Append(nil)))
	f.Fuzz(func(t *testing.T, stream []byte) {
		host, guest, err := connPair()
		if err != nil {
			t.Fatal(err)
		}
		defer guest.Close()
		c := NewClient(host)
		defer c.Close()
		c.mu.Lock()
		c.nextID = 0 // ids 1 and 2, so the stream can name them
		c.mu.Unlock()
		go io.Copy(io.Discard, guest)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		wg.Go(func() { c.Exec(ctx, Cmd{Argv: []string{"x"}, Stdin: bytes.NewReader([]byte("in"))}) })
		wg.Go(func() { c.GetFile(ctx, "/f", io.Discard) })
		// Both requests out before the answers come.
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			c.mu.Lock()
			n := len(c.calls)
			c.mu.Unlock()
			if n == 2 || time.Now().After(deadline) {
				break
			}
		}
		guest.Write(stream)
		guest.Close()
		wg.Wait()
	})
}
