package console

import (
	"errors"
	"io"
	"sync"
)

const (
	// inputChunk is the most one Read of a port's input asks for.
	inputChunk = 32 << 10
	// inputBuffers is how many chunks a port's input holds: one being
	// delivered while the next is read.
	inputBuffers = 2
	// maxEmptyReads is how many (0, nil) Reads in a row end the input,
	// as bufio does, rather than spin.
	maxEmptyReads = 100
)

// pump reads a port's input on a goroutine of its own, since an
// io.Reader (a terminal, a pipe) cannot be interrupted: Reset then never
// waits for a Read. It lives from the first Activate until the input ends
// or Close. It reads ahead at most inputBuffers chunks, so a guest that
// does not read holds the host's writer back.
type pump struct {
	r     io.Reader
	data  chan []byte   // chunks read, in order
	free  chan []byte   // buffers the feeder is done with
	done  chan struct{} // closed when run returns, after its last chunk was taken
	stop  chan struct{} // closed by close
	err   error         // why the input ended, nil for EOF; read after done
	start sync.Once
	halt  sync.Once
}

func newPump(r io.Reader) *pump {
	p := &pump{r: r, data: make(chan []byte), free: make(chan []byte, inputBuffers),
		done: make(chan struct{}), stop: make(chan struct{})}
	for range inputBuffers {
		p.free <- make([]byte, inputChunk)
	}
	return p
}

// run starts reading, the first time.
func (p *pump) run() { p.start.Do(func() { go p.loop() }) }

// close stops the goroutine once its Read returns.
func (p *pump) close() { p.halt.Do(func() { close(p.stop) }) }

func (p *pump) loop() {
	defer close(p.done)
	for empty := 0; ; {
		var buf []byte
		select {
		case buf = <-p.free:
		case <-p.stop:
			return
		}
		n, err := p.r.Read(buf[:cap(buf)])
		if n > 0 {
			empty = 0
			select {
			case p.data <- buf[:n]:
			case <-p.stop:
				return
			}
		} else {
			p.free <- buf // never blocks: the channel holds every buffer
		}
		switch {
		case errors.Is(err, io.EOF):
			return
		case err != nil:
			p.err = err
			return
		case n == 0:
			if empty++; empty == maxEmptyReads {
				p.err = io.ErrNoProgress
				return
			}
		}
	}
}

// recycle hands a delivered chunk's buffer back.
func (p *pump) recycle(buf []byte) { p.free <- buf[:cap(buf)] }
