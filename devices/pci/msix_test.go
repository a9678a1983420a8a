package pci

import (
	"sync"
	"testing"
)

// msixControl writes Message Control through config space.
func (r *rig) msixControl(ctl uint32) {
	r.write(rigDev, uint64(r.msixOff)+MSIXOffControl, 2, ctl)
}

// setEntry programs vector v's address and data, leaving its mask bit.
func (r *rig) setEntry(v int, addr uint64, data uint32) {
	base := uint64(rigTableOff + v*MSIXEntrySize)
	r.bar0(true, base+MSIXOffAddrLo, le64(addr)) // one QWORD access
	r.bar0(true, base+MSIXOffData, le32(data))
}

// setMasked writes vector v's Vector Control.
func (r *rig) setMasked(v int, masked bool) {
	var ctl uint32
	if masked {
		ctl = MSIXVectorMasked
	}
	r.bar0(true, uint64(rigTableOff+v*MSIXEntrySize+MSIXOffVectorCtl), le32(ctl))
}

func (r *rig) pba() uint32 {
	data := make([]byte, 8)
	r.bar0(false, rigPBAOff, data)
	return leN(data)
}

func TestMSIX_TableReadWrite(t *testing.T) {
	tests := []struct {
		name string
		off  uint64
		in   []byte
		want []byte // read back, same width
	}{
		{"address qword", 16, le64(0x1_FEE0_1004), le64(0x1_FEE0_1004)},
		{"address lo bits 1:0 read 0", 16, le32(0xFEE0_1007), le32(0xFEE0_1004)},
		{"data dword", 16 + MSIXOffData, le32(0x4041), le32(0x4041)},
		{"vector control keeps only the mask bit", 16 + MSIXOffVectorCtl, le32(0xFFFF_FFFE), le32(0)},
		{"data and control qword", 16 + MSIXOffData, le64(0xFFFF_FFFF_0000_0031), le64(0x1_0000_0031)},
		{"past the table", rigVectors * MSIXEntrySize, le32(0xFFFF_FFFF), le32(0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			r.msix.WriteTable(tt.off, tt.in)
			got := make([]byte, len(tt.want))
			r.msix.ReadTable(tt.off, got)
			if string(got) != string(tt.want) {
				t.Fatalf("read % x, want % x", got, tt.want)
			}
		})
	}
}

func TestMSIX_ResetState(t *testing.T) {
	r := newRig(t)
	for v := range rigVectors {
		if _, _, masked := r.msix.Message(v); !masked {
			t.Fatalf("vector %d unmasked at reset", v)
		}
	}
	if r.msix.Enabled() {
		t.Fatal("MSI-X enabled at reset")
	}
	if r.msix.Notify(0) {
		t.Fatal("Notify with MSI-X disabled reported delivery")
	}
	if r.pba() != 0 || len(r.fired) != 0 {
		t.Fatalf("disabled Notify left pba %#x, fired %v", r.pba(), r.fired)
	}
}

func TestMSIX_Message(t *testing.T) {
	r := newRig(t)
	r.setEntry(2, 0xFEE0_0000, 0x4022)
	r.setMasked(2, false)
	addr, data, masked := r.msix.Message(2)
	if addr != 0xFEE0_0000 || data != 0x4022 || masked {
		t.Fatalf("Message(2) = %#x, %#x, %v", addr, data, masked)
	}
	r.msixControl(MSIXCtlEnable | MSIXCtlFuncMask)
	if _, _, masked := r.msix.Message(2); !masked {
		t.Fatal("Function Mask does not mask vector 2")
	}
	if _, _, masked := r.msix.Message(rigVectors); !masked {
		t.Fatal("vector past the table reads unmasked")
	}
}

func TestMSIX_MaskedVectorPendsThenFiresOnUnmask(t *testing.T) {
	r := newRig(t)
	r.setEntry(1, 0xFEE0_0000, 0x41)
	r.msixControl(MSIXCtlEnable)
	if !r.msix.Notify(1) {
		t.Fatal("Notify(1) reported no delivery")
	}
	if len(r.fired) != 0 || r.pba() != 1<<1 || !r.msix.Pending(1) {
		t.Fatalf("masked Notify: fired %v, pba %#x", r.fired, r.pba())
	}
	r.setMasked(1, false)
	want := fired{1, Message{Addr: 0xFEE0_0000, Data: 0x41}}
	if len(r.fired) != 1 || r.fired[0] != want || r.pba() != 0 {
		t.Fatalf("after unmask: fired %v, pba %#x, want [%v], 0", r.fired, r.pba(), want)
	}
	r.msix.Notify(1)
	if len(r.fired) != 2 || r.pba() != 0 {
		t.Fatalf("unmasked Notify: fired %v, pba %#x", r.fired, r.pba())
	}
}

func TestMSIX_FunctionMaskHoldsEveryVector(t *testing.T) {
	r := newRig(t)
	for v := range rigVectors {
		r.setEntry(v, 0xFEE0_0000, uint32(0x40+v))
		r.setMasked(v, false)
	}
	r.msixControl(MSIXCtlEnable | MSIXCtlFuncMask)
	r.msix.Notify(0)
	r.msix.Notify(3)
	if len(r.fired) != 0 || r.pba() != 1<<0|1<<3 {
		t.Fatalf("function masked: fired %v, pba %#x", r.fired, r.pba())
	}
	r.setMasked(3, true) // stays pending behind its own mask
	r.msixControl(MSIXCtlEnable)
	if len(r.fired) != 1 || r.fired[0].vector != 0 || r.pba() != 1<<3 {
		t.Fatalf("function unmasked: fired %v, pba %#x", r.fired, r.pba())
	}
}

func TestMSIX_PBAIsReadOnly(t *testing.T) {
	r := newRig(t)
	r.msixControl(MSIXCtlEnable)
	r.msix.Notify(2)
	r.bar0(true, rigPBAOff, le64(0))
	r.bar0(true, rigPBAOff, le64(^uint64(0)))
	if got := r.pba(); got != 1<<2 {
		t.Fatalf("pba %#x after writes, want %#x", got, 1<<2)
	}
}

func TestNewMSIX_Rejects(t *testing.T) {
	fire := func(int, Message) {}
	for _, tt := range []struct {
		vectors int
		fire    func(int, Message)
	}{{0, fire}, {MaxMSIXVectors + 1, fire}, {1, nil}} {
		if _, err := NewMSIX(tt.vectors, tt.fire); err == nil {
			t.Fatalf("NewMSIX(%d, nil fire %v) succeeded", tt.vectors, tt.fire == nil)
		}
	}
	m, err := NewMSIX(MaxMSIXVectors, fire)
	must(t, err)
	if m.TableSize() != MaxMSIXVectors*MSIXEntrySize || m.PBASize() != MaxMSIXVectors/8 {
		t.Fatalf("2048 vectors: table %#x, PBA %#x bytes", m.TableSize(), m.PBASize())
	}
}

// TestMSIX_ConcurrentAccess gives the race detector a device raising vectors
// while a vCPU reprograms the table and another toggles the function mask.
func TestMSIX_ConcurrentAccess(t *testing.T) {
	r := newRig(t)
	r.msixControl(MSIXCtlEnable)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 1000 {
			r.msix.Notify(i % rigVectors)
		}
	})
	wg.Go(func() {
		for i := range 1000 {
			r.setMasked(i%rigVectors, i%3 == 0)
		}
	})
	wg.Go(func() {
		for i := range 1000 {
			r.cfg.WriteConfig(uint64(r.msixOff)+MSIXOffControl, le32(MSIXCtlEnable | uint32(i%2)*MSIXCtlFuncMask)[:2])
		}
	})
	wg.Wait()
}
