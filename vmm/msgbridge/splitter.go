package msgbridge

import (
	"encoding/binary"

	"github.com/vmm-dev/vmm/guestinit/agent"
)

// splitter cuts a byte stream of frames (length u32 LE | payload), fed in
// pieces of any size, into payloads. It buffers at most one frame of
// agent.MaxFrame. A frame whose length is out of range (beyond MaxFrame,
// or too short for a header, which no client could take: an empty message
// even reads as the end of the connection) is skipped over, its bytes
// discarded as they come, so a guest that sends one cannot make the host
// buffer it and the frames after it still pass.
type splitter struct {
	deliver func(payload []byte)
	skipped func(n uint32)

	prefix  [4]byte
	nprefix int
	frame   []byte // the payload so far
	want    int    // its length once the prefix is in; 0 between frames
	skip    uint32 // bytes of a frame out of range still to discard
}

func (s *splitter) write(p []byte) {
	for len(p) > 0 {
		switch {
		case s.skip > 0:
			n := min(uint32(len(p)), s.skip)
			s.skip -= n
			p = p[n:]
		case s.want > 0: // inside a frame
			n := min(len(p), s.want-len(s.frame))
			s.frame = append(s.frame, p[:n]...)
			p = p[n:]
			if len(s.frame) == s.want {
				s.deliver(s.frame)
				s.want, s.frame = 0, s.frame[:0]
			}
		default: // the length prefix
			n := copy(s.prefix[s.nprefix:], p)
			s.nprefix += n
			p = p[n:]
			if s.nprefix < len(s.prefix) {
				return
			}
			s.nprefix = 0
			length, err := agent.StreamLength(s.prefix)
			if err != nil {
				s.skip = binary.LittleEndian.Uint32(s.prefix[:])
				s.skipped(s.skip)
				continue
			}
			if cap(s.frame) < length {
				s.frame = make([]byte, 0, agent.MaxFrame)
			}
			s.want, s.frame = length, s.frame[:0]
		}
	}
}
