package boot

import (
	"slices"
	"testing"

	"github.com/vmm-dev/vmm/guestmem"
)

func TestE820Map(t *testing.T) {
	ebda := E820Entry{0x9FC00, 0x400, E820Reserved}
	bios := E820Entry{0xE0000, 0x20000, E820Reserved}
	fiveGiB, err := guestmem.X86Layout(5 << 30)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		regions []guestmem.RegionSpec
		want    []E820Entry
	}{
		{
			name:    "one region",
			regions: []guestmem.RegionSpec{{Start: 0, Size: 64 << 20}},
			want:    []E820Entry{{0, 0x9FC00, E820RAM}, ebda, bios, {0x100000, 63 << 20, E820RAM}},
		},
		{
			name:    "5 GiB split across the MMIO hole",
			regions: fiveGiB,
			want: []E820Entry{{0, 0x9FC00, E820RAM}, ebda, bios,
				{0x100000, 0xC000_0000 - 0x100000, E820RAM}, {1 << 32, 2 << 30, E820RAM}},
		},
		{
			name:    "tiny: below the EBDA",
			regions: []guestmem.RegionSpec{{Start: 0, Size: 512 << 10}},
			want:    []E820Entry{{0, 512 << 10, E820RAM}, ebda, bios},
		},
		{
			name:    "exactly 1 MiB",
			regions: []guestmem.RegionSpec{{Start: 0, Size: 1 << 20}},
			want:    []E820Entry{{0, 0x9FC00, E820RAM}, ebda, bios},
		},
		{
			name:    "ends inside the VGA hole",
			regions: []guestmem.RegionSpec{{Start: 0, Size: 0xB0000}},
			want:    []E820Entry{{0, 0x9FC00, E820RAM}, ebda, bios},
		},
		{
			name:    "no regions",
			regions: nil,
			want:    []E820Entry{ebda, bios},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := E820Map(tt.regions); !slices.Equal(got, tt.want) {
				t.Errorf("E820Map =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}
