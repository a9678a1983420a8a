package console_test

import (
	"testing"

	"github.com/vmm-dev/vmm/virtio"
	"github.com/vmm-dev/vmm/virtio/console"
)

// counter is an Out that only counts, so the benchmark measures the device.
type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// BenchmarkOutput64K moves the guest's 64 KiB writes to the host through
// the fake driver and reports MB/s. Linux sends a 64 KiB write(2) on a
// port as two 32 KiB chains; a single 64 KiB chain is the device's own
// limit case. One notification per write.
func BenchmarkOutput64K(b *testing.B) {
	for _, bc := range []struct {
		name  string
		chain int
	}{{"linux-32KiB-chains", linuxMaxWrite}, {"one-64KiB-chain", 64 << 10}} {
		b.Run(bc.name, func(b *testing.B) {
			const write = 64 << 10
			out := &counter{}
			stdin, _ := pipe(b)
			g := newGuest(b, []console.Port{{Name: "vmm.stdin", In: stdin}, {Name: "vmm.stdout", Out: out}})
			g.activate(featMultiport)
			g.handshake()
			g.setOpen(1, true)
			drv := g.drv[txq(1)]
			heads := make([]uint16, write/bc.chain)
			for i := range heads {
				heads[i] = uint16(i)
				drv.WriteDesc(heads[i], virtio.Descriptor{Addr: drv.Put(pattern(bc.chain, byte(i))), Len: uint32(bc.chain)})
			}
			b.SetBytes(write)
			b.ResetTimer()
			for range b.N {
				for _, h := range heads {
					drv.Publish(h)
				}
				if err := g.dev.Notify(txq(1)); err != nil {
					b.Fatal(err)
				}
				if u := drv.Used(); len(u) != len(heads) {
					b.Fatalf("%d chains back, want %d", len(u), len(heads))
				}
			}
			b.StopTimer()
			if out.n != int64(b.N)*write {
				b.Fatalf("host got %d bytes, want %d", out.n, int64(b.N)*write)
			}
		})
	}
}
