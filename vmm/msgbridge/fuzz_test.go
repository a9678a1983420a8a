package msgbridge

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/vmm-dev/vmm/guestinit/agent"
)

// referenceSplit is what splitter must deliver for stream, read whole.
func referenceSplit(stream []byte) (frames [][]byte, skipped int) {
	for len(stream) >= 4 {
		n := binary.LittleEndian.Uint32(stream)
		stream = stream[4:]
		if n < 5 || n > agent.MaxFrame {
			skipped++
			if uint64(n) >= uint64(len(stream)) {
				return frames, skipped
			}
			stream = stream[n:]
			continue
		}
		if int(n) > len(stream) {
			return frames, skipped
		}
		frames = append(frames, stream[:n])
		stream = stream[n:]
	}
	return frames, skipped
}

// FuzzSplitter: fed a stream in pieces of any sizes, the splitter delivers
// exactly the frames a whole read finds, skips what is out of range, and
// never buffers more than a frame.
func FuzzSplitter(f *testing.F) {
	f.Add(uint64(1), agent.AppendStream(nil, []byte("hello")))
	f.Add(uint64(2), append(binary.LittleEndian.AppendUint32(nil, agent.MaxFrame+1), 1, 2, 3))
	f.Add(uint64(3), agent.AppendStream(agent.AppendStream(nil, []byte{1, 2, 3, 4, 5, 6}), []byte{1}))
	f.Add(uint64(4), []byte{0, 0, 0, 0, 5, 0, 0, 0, 1, 2, 3, 4, 5})
	f.Fuzz(func(t *testing.T, seed uint64, stream []byte) {
		var got [][]byte
		skipped := 0
		s := splitter{
			deliver: func(p []byte) { got = append(got, bytes.Clone(p)) },
			skipped: func(uint32) { skipped++ },
		}
		rng := rand.New(rand.NewPCG(seed, seed))
		for p := stream; len(p) > 0; {
			n := min(len(p), 1+rng.IntN(64))
			s.write(p[:n])
			p = p[n:]
			if cap(s.frame) > agent.MaxFrame {
				t.Fatalf("buffer of %d bytes", cap(s.frame))
			}
		}
		want, wantSkipped := referenceSplit(stream)
		if len(got) != len(want) || skipped != wantSkipped {
			t.Fatalf("%d frames, %d skipped; want %d, %d", len(got), skipped, len(want), wantSkipped)
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("frame %d = %x, want %x", i, got[i], want[i])
			}
		}
	})
}
