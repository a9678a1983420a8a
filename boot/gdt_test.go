package boot

import "testing"

func TestEncodeSegment_RoundTrip(t *testing.T) {
	tests := []struct {
		name string
		seg  Segment
		want uint64 // 0: only check the round trip
	}{
		{"__BOOT_CS", CodeSegment(), 0x00AF9B000000FFFF},
		{"__BOOT_DS", DataSegment(), 0x00CF93000000FFFF},
		{"TSS", TSSSegment(), 0x00008B0000000067},
		{"byte granular, DPL 3, AVL", Segment{Base: 0x12345678, Limit: 0xABCDE, Type: 0x2, Present: true, DPL: 3, S: true, AVL: true}, 0},
		{"page granular, base high byte", Segment{Base: 0xFF000000, Limit: 0x1FFF, Type: 0xA, Present: true, S: true, DB: true, G: true}, 0},
		{"not present", Segment{Type: 0x3, S: true}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := EncodeSegment(tt.seg)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != 0 && d != tt.want {
				t.Errorf("EncodeSegment = %#016x, want %#016x", d, tt.want)
			}
			want := tt.seg
			want.Selector = 0
			if got := DecodeSegment(d); got != want {
				t.Errorf("DecodeSegment(EncodeSegment(s)) =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestEncodeSegment_Invalid(t *testing.T) {
	tests := []struct {
		name string
		seg  Segment
	}{
		{"G with a partial page", Segment{Limit: 0x1000, G: true}},
		{"limit over 20 bits without G", Segment{Limit: 0x100000}},
		{"DPL 4", Segment{DPL: 4}},
		{"type 0x10", Segment{Type: 0x10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d, err := EncodeSegment(tt.seg); err == nil {
				t.Fatalf("EncodeSegment = %#x, want an error", d)
			}
		})
	}
}
