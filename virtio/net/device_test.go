package net_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/vmm-dev/vmm/virtio"
	"github.com/vmm-dev/vmm/virtio/net"
)

func TestDevice_Identity(t *testing.T) {
	dev, err := net.New(newFakeBackend(), net.Options{MAC: testMAC})
	if err != nil {
		t.Fatal(err)
	}
	if dev.ID() != virtio.IDNet {
		t.Errorf("ID %d", dev.ID())
	}
	// Bits 0, 1, 5, 7-9, 11-13, 15, 16 (§5.1.3).
	const want = 0b1_1011_1011_1010_0011
	if got := dev.Features(); got != want {
		t.Errorf("Features = %#x, want %#x", got, want)
	}
	if got := dev.QueueMaxSizes(); len(got) != 2 || got[0] != 256 || got[1] != 256 {
		t.Errorf("QueueMaxSizes = %v", got)
	}
}

func TestConfig_Bytes(t *testing.T) {
	dev, err := net.New(newFakeBackend(), net.Options{MAC: net.MAC{0x52, 0x54, 0, 0x12, 0x34, 0x56}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		off  uint64
		n    int
		want []byte
	}{
		{0, 8, []byte{0x52, 0x54, 0, 0x12, 0x34, 0x56, 1, 0}}, // mac, status LINK_UP
		{net.ConfigStatus, 2, []byte{1, 0}},
		{4, 4, []byte{0x34, 0x56, 1, 0}},
		{7, 4, []byte{0, 0, 0, 0}}, // status high byte, then past the end
		{8, 2, []byte{0, 0}},       // max_virtqueue_pairs: no MQ
		{0x100, 4, []byte{0, 0, 0, 0}},
	}
	for _, tt := range tests {
		b := bytes.Repeat([]byte{0xee}, tt.n)
		dev.ReadConfig(tt.off, b)
		if !bytes.Equal(b, tt.want) {
			t.Errorf("ReadConfig(%d, %d) = % x, want % x", tt.off, tt.n, b, tt.want)
		}
	}
	dev.WriteConfig(0, []byte{1, 2, 3, 4, 5, 6})
	b := make([]byte, 6)
	dev.ReadConfig(0, b)
	if !bytes.Equal(b, []byte{0x52, 0x54, 0, 0x12, 0x34, 0x56}) {
		t.Errorf("MAC after a write: % x", b)
	}
}

func TestNew_Errors(t *testing.T) {
	tests := []struct {
		name string
		opts net.Options
		want error
	}{
		{"zero MAC", net.Options{}, net.ErrBadMAC},
		{"multicast MAC", net.Options{MAC: net.MAC{1, 0, 0x5e, 0, 0, 1}}, net.ErrBadMAC},
		{"queue size not a power of two", net.Options{MAC: testMAC, QueueSize: 100}, net.ErrQueueSize},
		{"queue size 1", net.Options{MAC: testMAC, QueueSize: 1}, net.ErrQueueSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := net.New(newFakeBackend(), tt.opts); !errors.Is(err, tt.want) {
				t.Errorf("New = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestActivate_Errors(t *testing.T) {
	dev, err := net.New(newFakeBackend(), net.Options{MAC: testMAC})
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.Notify(net.TXQueue); !errors.Is(err, net.ErrNotActive) {
		t.Errorf("Notify before Activate = %v", err)
	}
	q, _ := virtio.NewQueue(16)
	if err := dev.Activate(nil, 0, []*virtio.Queue{q}, &irqRecorder{}); !errors.Is(err, net.ErrNoQueue) {
		t.Errorf("one queue: %v", err)
	}
	if err := dev.Activate(nil, 0, []*virtio.Queue{q, nil}, &irqRecorder{}); !errors.Is(err, net.ErrNoQueue) {
		t.Errorf("no transmit queue: %v", err)
	}
	if err := dev.Activate(nil, 0, []*virtio.Queue{q, q}, nil); err == nil {
		t.Error("nil interrupt accepted")
	}

	r := newRig(t, 0)
	if err := r.dev.Notify(2); !errors.Is(err, net.ErrQueueIndex) {
		t.Errorf("Notify(2) = %v", err)
	}
	if err := r.dev.Activate(r.mem, 0, []*virtio.Queue{r.rxq, r.txq}, r.irq); !errors.Is(err, net.ErrActive) {
		t.Errorf("second Activate = %v", err)
	}
}

func TestActivate_SetsOffloads(t *testing.T) {
	features := net.FeatureGuestCsum | net.FeatureGuestTSO4 | net.FeatureMrgRxbuf | virtio.FeatureVersion1
	r := newRig(t, features)
	r.be.mu.Lock()
	got := r.be.offloads
	r.be.mu.Unlock()
	if len(got) != 1 || got[0] != features {
		t.Errorf("SetOffloads calls %#x, want [%#x]", got, features)
	}
}

func TestActivate_OffloadsFail(t *testing.T) {
	be := newFakeBackend()
	be.offErr = errors.New("no offloads")
	dev, err := net.New(be, net.Options{MAC: testMAC})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := virtio.NewQueue(16)
	b, _ := virtio.NewQueue(16)
	if err := dev.Activate(nil, 0, []*virtio.Queue{a, b}, &irqRecorder{}); !errors.Is(err, be.offErr) {
		t.Errorf("Activate = %v, want the backend's error", err)
	}
	if err := dev.Notify(net.RXQueue); !errors.Is(err, net.ErrNotActive) {
		t.Errorf("Notify after a failed Activate = %v", err)
	}
}

// TestReset_Reactivate: after Reset the device runs again on fresh
// queues, and the receiver delivers again.
func TestReset_Reactivate(t *testing.T) {
	r := newRig(t, 0)
	r.reset()
	if err := r.dev.Notify(net.RXQueue); !errors.Is(err, net.ErrNotActive) {
		t.Errorf("Notify after Reset = %v", err)
	}
	r.newDrivers() // a driver lays its rings out afresh after a reset
	r.activate()
	head := r.rx.AddChain(nil, []int{2048})
	pkt := packet(net.Header{}, frame(100, 1))
	r.be.send(pkt)
	r.waitIdle()
	u := usedN(t, r.rx, 1)
	if u[0].ID != uint32(head) || u[0].Len != uint32(len(pkt)) {
		t.Fatalf("used %+v", u)
	}
}

func TestRandomMAC(t *testing.T) {
	src := bytes.NewReader([]byte{0xff, 1, 2, 3, 4, 5})
	m, err := net.RandomMAC(src)
	if err != nil {
		t.Fatal(err)
	}
	if m != (net.MAC{0xfe, 1, 2, 3, 4, 5}) || m.String() != "fe:01:02:03:04:05" {
		t.Errorf("RandomMAC = %v", m)
	}
	if _, err := net.RandomMAC(bytes.NewReader(nil)); err == nil {
		t.Error("RandomMAC from an empty source succeeded")
	}
}

// offloadBackend is a fakeBackend that carries only some offloads.
type offloadBackend struct {
	*fakeBackend
	offloads uint64
}

func (b offloadBackend) Offloads() uint64 { return b.offloads }

// TestDevice_BackendOffloads: the device offers only the offloads its
// backend carries, and drops those whose prerequisite is gone (§5.1.3.1).
func TestDevice_BackendOffloads(t *testing.T) {
	const rest = net.FeatureMAC | net.FeatureMrgRxbuf | net.FeatureStatus
	tests := []struct {
		offloads, want uint64
	}{
		{0, rest},
		{net.FeatureCsum | net.FeatureHostTSO4, rest | net.FeatureCsum | net.FeatureHostTSO4},
		{net.FeatureGuestTSO4 | net.FeatureGuestECN | net.FeatureHostECN, rest},   // TSO without checksum, ECN without TSO
		{net.FeatureGuestCsum | net.FeatureGuestECN, rest | net.FeatureGuestCsum}, // ECN without TSO
		{^uint64(0), rest | net.FeatureCsum | net.FeatureGuestCsum | net.FeatureGuestTSO4 | net.FeatureGuestTSO6 | net.FeatureGuestECN | net.FeatureHostTSO4 | net.FeatureHostTSO6 | net.FeatureHostECN},
	}
	for _, tt := range tests {
		dev, err := net.New(offloadBackend{newFakeBackend(), tt.offloads}, net.Options{MAC: testMAC})
		if err != nil {
			t.Fatal(err)
		}
		if got := dev.Features(); got != tt.want {
			t.Errorf("backend offloads %#x: Features = %#x, want %#x", tt.offloads, got, tt.want)
		}
	}
}
