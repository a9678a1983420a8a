package pci

import (
	"errors"
	"testing"
)

// capTTL bounds a capability walk, as Linux's PCI_FIND_CAP_TTL does, so a
// looping list cannot hang it.
const capTTL = 48

// findCapability walks 00:dev.0's list through 0xCF8/0xCFC the way Linux's
// pci_find_capability does and returns the offset of capability id, or 0.
func (r *rig) findCapability(dev int, id byte) uint8 {
	if r.read(dev, RegStatus, 2)&StatusCapList == 0 {
		return 0
	}
	pos := uint8(r.read(dev, RegCapabilitiesPtr, 1))
	for range capTTL {
		pos &= CapPtrMask
		if pos < headerSize {
			return 0
		}
		ent := r.read(dev, uint64(pos), 2)
		if byte(ent) == 0xFF {
			return 0
		}
		if byte(ent) == id {
			return pos
		}
		pos = uint8(ent >> 8)
	}
	return 0
}

func TestCapabilities_ChainWalk(t *testing.T) {
	r := newRig(t)
	tests := []struct {
		name string
		id   byte
		want uint8
	}{
		{"vendor first", CapIDVendor, headerSize},
		{"MSI-X after the 16-byte vendor capability", CapIDMSIX, headerSize + 16},
		{"absent MSI", 0x05, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.findCapability(rigDev, tt.id); got != tt.want {
				t.Fatalf("findCapability(%#x) = %#x, want %#x", tt.id, got, tt.want)
			}
		})
	}
	if got := r.findCapability(0, CapIDMSIX); got != 0 {
		t.Fatalf("host bridge has MSI-X at %#x", got)
	}
	if got := r.read(rigDev, uint64(r.msixOff)+CapOffNext, 1); got != 0 {
		t.Fatalf("last capability's next pointer %#x, want 0", got)
	}
	if got := r.read(rigDev, uint64(r.vndrOff)+CapOffVendorLen, 1); got != 16 {
		t.Fatalf("vendor cap_len %d, want 16", got)
	}
}

func TestCapabilities_WritableOnlyWhereAllowed(t *testing.T) {
	tests := []struct {
		name string
		off  func(r *rig) uint64
		size int
		want uint32 // after writing all ones
	}{
		{"cap id and next", func(r *rig) uint64 { return uint64(r.vndrOff) }, 2, uint32(headerSize+16)<<8 | CapIDVendor},
		{"vendor cap_len", func(r *rig) uint64 { return uint64(r.vndrOff) + CapOffVendorLen }, 1, 16},
		{"vendor body, first byte read-only", func(r *rig) uint64 { return uint64(r.vndrOff) + 3 }, 1, 0},
		{"vendor body, writable bytes", func(r *rig) uint64 { return uint64(r.vndrOff) + 4 }, 4, 0xFFFF_FFFF},
		{"MSI-X control: enable and mask only", func(r *rig) uint64 { return uint64(r.msixOff) + MSIXOffControl }, 2,
			MSIXCtlEnable | MSIXCtlFuncMask | (rigVectors - 1)},
		{"MSI-X table location", func(r *rig) uint64 { return uint64(r.msixOff) + MSIXOffTable }, 4, rigTableOff | 0},
		{"MSI-X PBA location", func(r *rig) uint64 { return uint64(r.msixOff) + MSIXOffPBA }, 4, rigPBAOff | 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			off := tt.off(r)
			r.write(rigDev, off, tt.size, 0xFFFF_FFFF)
			if got := r.read(rigDev, off, tt.size); got != tt.want {
				t.Fatalf("read %#x, want %#x", got, tt.want)
			}
		})
	}
}

func TestCapabilities_NoRoomLeft(t *testing.T) {
	c := NewConfig(Header{})
	body := make([]byte, ConfigSize-headerSize-capHeaderSize-1) // the vendor length byte fills the space
	if _, err := c.AddVendorCapability(body, nil); err != nil {
		t.Fatalf("capability filling the space: %v", err)
	}
	if _, err := c.AddCapability(CapIDVendor, nil, nil); !errors.Is(err, ErrNoConfigSpace) {
		t.Fatalf("capability past the end: %v, want ErrNoConfigSpace", err)
	}
}

func TestCapabilities_WriteMaskLengthMustMatch(t *testing.T) {
	c := NewConfig(Header{})
	if _, err := c.AddCapability(CapIDVendor, []byte{1, 2}, []byte{0xFF}); err == nil {
		t.Fatal("AddCapability with a short write mask succeeded")
	}
	if _, err := c.AddVendorCapability([]byte{1, 2}, []byte{0xFF}); err == nil {
		t.Fatal("AddVendorCapability with a short write mask succeeded")
	}
}

func TestAddMSIXCapability_Rejects(t *testing.T) {
	tests := []struct {
		name             string
		tableBIR, pbaBIR int
		tableOff, pbaOff uint32
	}{
		{"table in the I/O BAR", 1, 0, 0, rigPBAOff},
		{"PBA in an unused BAR", 0, 4, 0, 0},
		{"BIR 7", 7, 0, 0, rigPBAOff},
		{"unaligned table", 0, 0, 4, rigPBAOff},
		{"table past the BAR", 0, 0, rigBAR0Size - 0x20, rigPBAOff},
		{"PBA past the BAR", 0, 0, 0, rigBAR0Size},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			m, err := NewMSIX(rigVectors, func(int, Message) {})
			must(t, err)
			if _, err := r.cfg.AddMSIXCapability(m, tt.tableBIR, tt.tableOff, tt.pbaBIR, tt.pbaOff); !errors.Is(err, ErrInvalidBAR) {
				t.Fatalf("AddMSIXCapability: %v, want ErrInvalidBAR", err)
			}
		})
	}
}
