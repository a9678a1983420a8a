// Not under -race: like a guest, the model's driver writes the ring while
// the device's receiver reads it (as virtio/net's own RX benchmark notes).

//go:build !race

package main

import (
	"testing"
	"time"
)

// TestNetModel_BothDirections moves a few queues' worth of frames each
// way; the runs check the counts themselves.
func TestNetModel_BothDirections(t *testing.T) {
	for name, run := range map[string]func(*testing.B, int) (time.Duration, error){"tx": runNetModelTX, "rx": runNetModelRX} {
		var took time.Duration
		var runErr error
		err := benchmarkOnce(func(b *testing.B) { took, runErr = run(b, 3*netModelQueue+5) })
		if runErr != nil || err != nil || took <= 0 {
			t.Errorf("%s: %v, %v, %v", name, took, runErr, err)
		}
	}
}
