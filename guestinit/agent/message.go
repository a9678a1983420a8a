package agent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
)

// ExecRequest is an Exec frame's body.
type ExecRequest struct {
	Argv []string
	// Env is added to the guest's base environment (ServeOptions.Env);
	// a later K=V wins.
	Env []string
	// Dir is the working directory; empty is the guest's default.
	Dir string
	// User is uid[:gid] or a user name known to the guest; empty is the
	// guest's default user.
	User string
	// Stdin says Stdin frames and a StdinEnd follow; without it the
	// program's stdin is /dev/null.
	Stdin bool
}

const execFlagStdin = 1

// Marshal encodes r.
func (r ExecRequest) Marshal() []byte {
	var e encoder
	flags := uint8(0)
	if r.Stdin {
		flags |= execFlagStdin
	}
	e.u8(flags)
	e.str(r.Dir)
	e.str(r.User)
	e.strs(r.Argv)
	e.strs(r.Env)
	return e.b
}

// ParseExecRequest decodes an Exec body.
func ParseExecRequest(b []byte) (ExecRequest, error) {
	d := decoder{b: b}
	var r ExecRequest
	flags := d.u8()
	if flags&^execFlagStdin != 0 {
		d.fail("unknown exec flags %#x", flags)
	}
	r.Stdin = flags&execFlagStdin != 0
	r.Dir = d.str()
	r.User = d.str()
	r.Argv = d.strs()
	r.Env = d.strs()
	return r, d.end("exec request")
}

// Exit is an Exit frame's body.
type Exit struct {
	// Status is the program's exit status, 128+n for signal n.
	Status int
	// Message, when set, is why the program did not start.
	Message string
}

// Marshal encodes x.
func (x Exit) Marshal() []byte {
	var e encoder
	e.u32(uint32(x.Status))
	e.str(x.Message)
	return e.b
}

// ParseExit decodes an Exit body.
func ParseExit(b []byte) (Exit, error) {
	d := decoder{b: b}
	status := d.u32()
	if status > 255 {
		d.fail("exit status %d, want 0-255", status)
	}
	x := Exit{Status: int(status), Message: d.str()}
	return x, d.end("exit")
}

// PutRequest is a Put frame's body.
type PutRequest struct {
	Path string
	Mode fs.FileMode // permission bits only
}

// Marshal encodes r.
func (r PutRequest) Marshal() []byte {
	var e encoder
	e.u32(uint32(r.Mode.Perm()))
	e.str(r.Path)
	return e.b
}

// ParsePutRequest decodes a Put body.
func ParsePutRequest(b []byte) (PutRequest, error) {
	d := decoder{b: b}
	mode := d.u32()
	if mode&^uint32(fs.ModePerm) != 0 {
		d.fail("mode %#o has more than permission bits", mode)
	}
	r := PutRequest{Mode: fs.FileMode(mode), Path: d.str()}
	return r, d.end("put request")
}

// MarshalPath encodes a Get body.
func MarshalPath(path string) []byte {
	var e encoder
	e.str(path)
	return e.b
}

// ParsePath decodes a Get body.
func ParsePath(b []byte) (string, error) {
	d := decoder{b: b}
	p := d.str()
	return p, d.end("path")
}

// Code classifies an Error frame, so the host can tell the usual failures
// apart with errors.Is.
type Code uint8

const (
	CodeOther      Code = 0
	CodeNotExist   Code = 1 // fs.ErrNotExist
	CodePermission Code = 2 // fs.ErrPermission
	CodeInvalid    Code = 3 // fs.ErrInvalid: a malformed request or a path that escapes the root
	CodeBusy       Code = 4 // ErrBusy: too many requests, or the id is in use
)

// ErrBusy is the error of a request the guest had no room for.
var ErrBusy = errors.New("the guest agent is busy")

// ErrorBody is an Error frame's body.
type ErrorBody struct {
	Code    Code
	Message string
}

// Marshal encodes e.
func (eb ErrorBody) Marshal() []byte {
	var e encoder
	e.u8(uint8(eb.Code))
	e.str(eb.Message)
	return e.b
}

// ParseError decodes an Error body.
func ParseError(b []byte) (ErrorBody, error) {
	d := decoder{b: b}
	eb := ErrorBody{Code: Code(d.u8()), Message: d.str()}
	return eb, d.end("error")
}

// MarshalAck encodes an Ack body.
func MarshalAck(n uint32) []byte { return binary.LittleEndian.AppendUint32(nil, n) }

// ParseAck decodes an Ack body.
func ParseAck(b []byte) (uint32, error) {
	d := decoder{b: b}
	n := d.u32()
	return n, d.end("ack")
}

// ParseEmpty checks the body of a frame that has none.
func ParseEmpty(t Type, b []byte) error {
	if len(b) != 0 {
		return fmt.Errorf("%w: %s frame with a %d-byte body, want none", ErrMalformed, t, len(b))
	}
	return nil
}

type encoder struct{ b []byte }

func (e *encoder) u8(v uint8)   { e.b = append(e.b, v) }
func (e *encoder) u32(v uint32) { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *encoder) str(s string) {
	e.u32(uint32(len(s)))
	e.b = append(e.b, s...)
}
func (e *encoder) strs(l []string) {
	e.u32(uint32(len(l)))
	for _, s := range l {
		e.str(s)
	}
}

// decoder reads a body; the first failure sticks and later reads return
// zero values. Nothing it allocates is larger than the body itself.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
}

func (d *decoder) u8() uint8 {
	if d.err != nil || len(d.b) < 1 {
		d.fail("truncated")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) u32() uint32 {
	if d.err != nil || len(d.b) < 4 {
		d.fail("truncated")
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) str() string {
	n := d.u32()
	if d.err != nil {
		return ""
	}
	if uint64(n) > uint64(len(d.b)) {
		d.fail("string of %d bytes with %d left", n, len(d.b))
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) strs() []string {
	n := d.u32()
	if d.err != nil {
		return nil
	}
	// Each string takes at least its 4-byte length, so a count the body
	// cannot hold is refused before anything is allocated for it.
	if uint64(n) > uint64(len(d.b))/4 {
		d.fail("list of %d strings with %d bytes left", n, len(d.b))
		return nil
	}
	l := make([]string, 0, n)
	for range n {
		l = append(l, d.str())
	}
	if d.err != nil {
		return nil
	}
	return l
}

func (d *decoder) end(what string) error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d bytes after the %s", len(d.b), what)
	}
	if d.err != nil {
		return fmt.Errorf("%s: %w", what, d.err)
	}
	return nil
}
