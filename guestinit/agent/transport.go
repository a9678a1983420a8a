package agent

import (
	"fmt"
	"io"
	"sync"
)

// transport carries payloads: read by one goroutine, written by any.
type transport interface {
	// read returns the next payload, valid until the next call.
	read() ([]byte, error)
	// write sends one payload whole: concurrent writes never interleave.
	write(payload []byte) error
	close() error
}

// streamTransport carries length-prefixed frames on a byte stream.
type streamTransport struct {
	fr *FrameReader
	c  io.Closer // nil: closing is the owner's business

	mu sync.Mutex // serializes writes: one frame may take several
	w  io.Writer
}

func newStreamTransport(rw io.ReadWriter, c io.Closer) *streamTransport {
	return &streamTransport{fr: NewFrameReader(rw), w: rw, c: c}
}

func (t *streamTransport) read() ([]byte, error) { return t.fr.Next() }

func (t *streamTransport) write(payload []byte) error {
	b := AppendStream(make([]byte, 0, prefixLen+len(payload)), payload)
	t.mu.Lock()
	defer t.mu.Unlock()
	_, err := t.w.Write(b)
	return err
}

func (t *streamTransport) close() error {
	if t.c == nil {
		return nil
	}
	return t.c.Close()
}

// packetTransport carries one payload per message of a message-oriented
// connection (a unix SOCK_SEQPACKET socket).
type packetTransport struct {
	conn io.ReadWriteCloser
	buf  []byte // MaxFrame+1: a message that fills it is too long

	mu sync.Mutex
}

func newPacketTransport(conn io.ReadWriteCloser) *packetTransport {
	return &packetTransport{conn: conn, buf: make([]byte, MaxFrame+1)}
}

func (t *packetTransport) read() ([]byte, error) {
	n, err := t.conn.Read(t.buf)
	if n == 0 && err == nil {
		// A SEQPACKET read of 0 is the peer's end; no valid frame is
		// empty.
		err = io.EOF
	}
	if err != nil {
		return nil, err
	}
	if n < headerLen || n > MaxFrame {
		return nil, fmt.Errorf("%w: message of %d bytes, want %d to %d", ErrFrameSize, n, headerLen, MaxFrame)
	}
	return t.buf[:n], nil
}

func (t *packetTransport) write(payload []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, err := t.conn.Write(payload)
	return err
}

func (t *packetTransport) close() error { return t.conn.Close() }
