package virtio_test

import (
	"testing"

	"github.com/vmm-dev/vmm/virtio"
)

// TestChainPool_ReusesWhatWasPut: Take hands back the chains put, last
// first, then new ones; after Drop only new ones.
func TestChainPool_ReusesWhatWasPut(t *testing.T) {
	var p virtio.ChainPool
	a, b := p.Take(), p.Take()
	if a == nil || b == nil || a == b {
		t.Fatalf("Take from an empty pool: %p, %p; want two new chains", a, b)
	}
	p.Put(a)
	p.Put(b)
	if got := p.Take(); got != b {
		t.Fatalf("Take after Put(a), Put(b) = %p, want b %p", got, b)
	}
	p.Drop()
	if got := p.Take(); got == a || got == b {
		t.Fatalf("Take after Drop returned a kept chain %p", got)
	}
}
