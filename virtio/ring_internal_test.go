package virtio

import (
	"encoding/binary"
	"testing"
)

// TestNeedEvent checks vring_need_event against its meaning: the index
// moved from old to new and passed event, that is event is one of old,
// old+1, ..., new-1 modulo 2^16.
func TestNeedEvent(t *testing.T) {
	spans := []struct{ old, n uint16 }{
		{0, 0}, {0, 1}, {0, 5}, {100, 1}, {65535, 1}, {65530, 12}, {65535, 0}, {32768, 300},
	}
	for _, s := range spans {
		newIdx := s.old + s.n
		for e := range 1 << 16 {
			event := uint16(e)
			want := false
			for k := range s.n {
				if s.old+k == event {
					want = true
				}
			}
			if got := needEvent(event, newIdx, s.old); got != want {
				t.Fatalf("needEvent(event %d, new %d, old %d) = %v, want %v", event, newIdx, s.old, got, want)
			}
		}
	}
}

// TestDescriptor_WireLayout: Descriptor's encoding/binary form is struct
// virtq_desc, and decodeDescriptor reads it back.
func TestDescriptor_WireLayout(t *testing.T) {
	d := Descriptor{Addr: 0x1122334455667788, Len: 0x99aabbcc, Flags: DescFNext | DescFWrite, Next: 0xbeef}
	if n := binary.Size(d); n != DescSize {
		t.Fatalf("binary.Size = %d, want %d", n, DescSize)
	}
	var b [DescSize]byte
	if _, err := binary.Encode(b[:], binary.LittleEndian, d); err != nil {
		t.Fatal(err)
	}
	if binary.LittleEndian.Uint16(b[DescNextOffset:]) != 0xbeef || binary.LittleEndian.Uint32(b[DescLenOffset:]) != 0x99aabbcc {
		t.Fatalf("encoded % x", b)
	}
	if got := decodeDescriptor(&b); got != d {
		t.Fatalf("decoded %+v, want %+v", got, d)
	}
}

// TestRingSizes are the sizes in the §2.7 table.
func TestRingSizes(t *testing.T) {
	if DescTableSize(256) != 4096 || AvailRingSize(256) != 6+2*256 || UsedRingSize(256) != 6+8*256 {
		t.Fatal("ring sizes differ from §2.7")
	}
	if UsedEventOffset(8) != 4+16 || AvailEventOffset(8) != 4+64 {
		t.Fatal("event field offsets differ from §2.7.6 and §2.7.8")
	}
}
