package agent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

const (
	// MaxFrame bounds a frame's payload (header and body). It stays well
	// under the default socket send buffer (net.core.wmem_default), so a
	// SEQPACKET message of one frame never needs a larger one.
	MaxFrame = 128 << 10
	// MaxData bounds the data of one data frame (Stdin, PutData, Stdout,
	// Stderr, GetData).
	MaxData = 64 << 10
	// Window is how many bytes of one request's Stdin and PutData the
	// host may have unacknowledged.
	Window = 256 << 10
	// MaxRequests bounds the requests the guest serves at once.
	MaxRequests = 64

	// headerLen is the payload header: id u32 and type u8.
	headerLen = 5
	// prefixLen is a stream frame's length prefix.
	prefixLen = 4
)

// Type is a frame's kind.
type Type uint8

// Frame types; see the package documentation.
const (
	TypeExec     Type = 0x01
	TypeStdin    Type = 0x02
	TypeStdinEnd Type = 0x03
	TypePut      Type = 0x04
	TypePutData  Type = 0x05
	TypePutEnd   Type = 0x06
	TypeGet      Type = 0x07
	TypeCancel   Type = 0x08
	TypePowerOff Type = 0x09

	TypeStdout  Type = 0x41
	TypeStderr  Type = 0x42
	TypeExit    Type = 0x43
	TypeGetData Type = 0x44
	TypeOK      Type = 0x45
	TypeError   Type = 0x46
	TypeAck     Type = 0x47
)

var typeNames = map[Type]string{
	TypeExec: "Exec", TypeStdin: "Stdin", TypeStdinEnd: "StdinEnd", TypePut: "Put",
	TypePutData: "PutData", TypePutEnd: "PutEnd", TypeGet: "Get", TypeCancel: "Cancel",
	TypePowerOff: "PowerOff", TypeStdout: "Stdout", TypeStderr: "Stderr", TypeExit: "Exit",
	TypeGetData: "GetData", TypeOK: "OK", TypeError: "Error", TypeAck: "Ack",
}

func (t Type) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("Type(%#x)", uint8(t))
}

// Errors of the framing.
var (
	// ErrFrameSize: a length prefix or message outside headerLen..MaxFrame.
	// A stream cannot be read past one.
	ErrFrameSize = errors.New("agent frame size out of range")
	// ErrMalformed: a frame whose body does not parse as its type's.
	ErrMalformed = errors.New("malformed agent frame")
)

// Frame is one payload: the request id, the type and the type's body.
type Frame struct {
	ID   uint32
	Type Type
	Body []byte
}

// Append appends f's payload to b.
func (f Frame) Append(b []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, f.ID)
	b = append(b, byte(f.Type))
	return append(b, f.Body...)
}

// Payload returns f's payload, checking its size.
func (f Frame) Payload() ([]byte, error) {
	if n := headerLen + len(f.Body); n > MaxFrame {
		return nil, fmt.Errorf("%w: %s frame of %d bytes, at most %d", ErrFrameSize, f.Type, n, MaxFrame)
	}
	return f.Append(make([]byte, 0, headerLen+len(f.Body))), nil
}

// ParseFrame splits a payload into its header and body; Body aliases p.
func ParseFrame(p []byte) (Frame, error) {
	if len(p) < headerLen || len(p) > MaxFrame {
		return Frame{}, fmt.Errorf("%w: %d bytes, want %d to %d", ErrFrameSize, len(p), headerLen, MaxFrame)
	}
	return Frame{ID: binary.LittleEndian.Uint32(p), Type: Type(p[4]), Body: p[headerLen:]}, nil
}

// AppendStream appends payload as a stream frame, length-prefixed, to b.
func AppendStream(b, payload []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(payload)))
	return append(b, payload...)
}

// StreamLength reads a stream frame's length prefix and checks it.
func StreamLength(prefix [prefixLen]byte) (int, error) {
	n := binary.LittleEndian.Uint32(prefix[:])
	if n < headerLen || n > MaxFrame {
		return 0, fmt.Errorf("%w: length prefix %d, want %d to %d", ErrFrameSize, n, headerLen, MaxFrame)
	}
	return int(n), nil
}

// FrameReader reads stream frames.
type FrameReader struct {
	r   io.Reader
	buf []byte
}

// NewFrameReader reads frames from r.
func NewFrameReader(r io.Reader) *FrameReader { return &FrameReader{r: r} }

// Next returns the next frame's payload, valid until the next call. It
// returns io.EOF at a clean end of r, io.ErrUnexpectedEOF when r ends
// inside a frame, and an ErrFrameSize error for a length out of range,
// before reading or allocating for it.
func (fr *FrameReader) Next() ([]byte, error) {
	var prefix [prefixLen]byte
	if _, err := io.ReadFull(fr.r, prefix[:]); err != nil {
		return nil, err
	}
	n, err := StreamLength(prefix)
	if err != nil {
		return nil, err
	}
	if cap(fr.buf) < n {
		fr.buf = make([]byte, n)
	}
	p := fr.buf[:n]
	if _, err := io.ReadFull(fr.r, p); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return p, nil
}

// KernelFlag on a guest's kernel command line boots guestinit into agent
// mode when there is no run config: it serves the agent on PortAgent
// until a PowerOff request.
const KernelFlag = "vmm.agent=1"
