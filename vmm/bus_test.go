package vmm

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

type recorder struct {
	reads, writes []uint64
	fill          byte
}

func (r *recorder) Read(off uint64, data []byte) {
	r.reads = append(r.reads, off)
	for i := range data {
		data[i] = r.fill
	}
}
func (r *recorder) Write(off uint64, data []byte) { r.writes = append(r.writes, off) }

func TestBus_Insert_RejectsOverlaps(t *testing.T) {
	b := NewBus("pio")
	if err := b.Insert(0x3f8, 8, "com1", &recorder{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		base, size uint64
	}{
		{"same", 0x3f8, 8},
		{"tail", 0x3ff, 2},
		{"head", 0x3f0, 9},
		{"covering", 0x3f0, 0x20},
		{"inside", 0x3fa, 1},
	} {
		err := b.Insert(tc.base, tc.size, tc.name, &recorder{})
		if err == nil || !strings.Contains(err.Error(), "overlaps com1") {
			t.Errorf("%s: err = %v, want overlap", tc.name, err)
		}
	}
	for _, tc := range []struct{ base, size uint64 }{{0x3f0, 8}, {0x400, 1}} {
		if err := b.Insert(tc.base, tc.size, "neighbour", &recorder{}); err != nil {
			t.Errorf("adjacent range [%#x,+%d): %v", tc.base, tc.size, err)
		}
	}
	if err := b.Insert(0x10, 0, "empty", &recorder{}); err == nil {
		t.Error("empty range accepted")
	}
	if err := b.Insert(^uint64(0), 2, "wrap", &recorder{}); err == nil {
		t.Error("wrapping range accepted")
	}
}

func TestBus_Dispatch_OffsetsAndBounds(t *testing.T) {
	b := NewBus("mmio")
	d := &recorder{fill: 0xab}
	if err := b.Insert(0x1000, 0x10, "dev", d); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 4)
	if !b.Read(0x1004, data) || d.reads[0] != 4 || data[0] != 0xab {
		t.Fatalf("read not dispatched at offset 4: %v %v", d.reads, data)
	}
	if !b.Write(0x100c, data) || d.writes[0] != 0xc {
		t.Fatalf("write not dispatched: %v", d.writes)
	}
	for _, addr := range []uint64{0xffc, 0x100d, 0x1010, 0, ^uint64(0) - 1} {
		if b.Read(addr, data) || b.Write(addr, data) {
			t.Errorf("access at %#x (4 bytes) dispatched; want unhandled", addr)
		}
	}
}

func TestBus_Remove_FreesTheRange(t *testing.T) {
	b := NewBus("mmio")
	if err := b.Insert(0x1000, 0x100, "bar", &recorder{}); err != nil {
		t.Fatal(err)
	}
	if !b.Remove(0x1000) || b.Remove(0x1000) {
		t.Fatal("Remove should succeed once")
	}
	if b.Read(0x1000, make([]byte, 4)) {
		t.Fatal("removed range still dispatched")
	}
	if err := b.Insert(0x1080, 0x100, "moved", &recorder{}); err != nil {
		t.Fatalf("range not free after Remove: %v", err)
	}
}

// A BAR moves on one vCPU while the others dispatch: lookups see the table
// before or after the change, so a device that stays put is never missed
// (and -race finds no unsynchronised access).
func TestBus_ChangesWhileDispatching(t *testing.T) {
	b := NewBus("mmio")
	for _, base := range []uint64{0x1000, 0x5000} {
		if err := b.Insert(base, 0x100, "fixed", nopDevice{}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := make([]byte, 4)
			for {
				select {
				case <-stop:
					return
				default:
				}
				b.Read(0x2000, data)
				if !b.Write(0x1000, data) || !b.Write(0x50fc, data) {
					t.Error("a device that stayed put was missed while another moved")
					return
				}
			}
		}()
	}
	for i := range 1000 {
		from, to := uint64(0x2000), uint64(0x3000)
		if i%2 == 1 {
			from, to = to, from
		}
		b.Remove(from)
		if err := b.Insert(to, 0x100, "bar", nopDevice{}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}

// BenchmarkBus_Find looks up an unclaimed port, as the exits benchmark's
// port 0x80 is, and a claimed one, on a bus with vmm's legacy devices.
func BenchmarkBus_Find(b *testing.B) {
	bus := NewBus("pio")
	for _, r := range []struct{ base, size uint64 }{{0x60, 1}, {0x64, 1}, {0x3f8, 8}, {0x600, 8}, {0xcf8, 8}} {
		if err := bus.Insert(r.base, r.size, fmt.Sprint(r.base), nopDevice{}); err != nil {
			b.Fatal(err)
		}
	}
	data := make([]byte, 1)
	for _, port := range []uint64{0x80, 0x3f8} {
		b.Run(fmt.Sprintf("port=%#x", port), func(b *testing.B) {
			for range b.N {
				bus.Write(port, data)
			}
		})
	}
}
