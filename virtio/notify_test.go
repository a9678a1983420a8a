package virtio_test

import (
	"testing"

	"github.com/vmm-dev/vmm/virtio"
	"github.com/vmm-dev/vmm/virtio/virtiotest"
)

const eventIdx = virtio.FeatureEventIdx

// complete pushes n one-descriptor chains through the queue: publish, pop,
// AddUsed. Descriptor 0 must be a valid buffer.
func complete(t *testing.T, q *virtio.Queue, d *virtiotest.Driver, n int) {
	t.Helper()
	for range n {
		d.Publish(0)
		mustPop(t, q, d)
		if err := q.AddUsed(d.Mem(), 0, 1); err != nil {
			t.Fatal(err)
		}
	}
}

func needs(t *testing.T, q *virtio.Queue, d *virtiotest.Driver) bool {
	t.Helper()
	v, err := q.NeedsNotification(d.Mem())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestNeedsNotification_NoInterruptFlag(t *testing.T) {
	q, d := newQueue(t, 64<<10, 8, 0)
	d.WriteDesc(0, virtio.Descriptor{Addr: d.Alloc(1), Len: 1})
	if needs(t, q, d) {
		t.Error("notification with nothing used")
	}
	complete(t, q, d, 1)
	if !needs(t, q, d) {
		t.Error("no notification with avail.flags 0")
	}
	if needs(t, q, d) {
		t.Error("second notification for the same entries")
	}
	d.SetAvailFlags(virtio.AvailFNoInterrupt)
	complete(t, q, d, 2)
	if needs(t, q, d) {
		t.Error("notification despite VIRTQ_AVAIL_F_NO_INTERRUPT")
	}
	// used_event is ignored without VIRTIO_F_EVENT_IDX.
	d.SetAvailFlags(0)
	d.SetUsedEvent(100)
	complete(t, q, d, 1)
	if !needs(t, q, d) {
		t.Error("used_event honoured without VIRTIO_F_EVENT_IDX")
	}
}

// TestNeedsNotification_EventIdx checks §2.7.7 with VIRTIO_F_EVENT_IDX:
// notify when the used entries added since the last check include the one
// at used_event, modulo 2^16.
func TestNeedsNotification_EventIdx(t *testing.T) {
	tests := []struct {
		name      string
		start     int    // entries completed (and checked) first
		usedEvent uint16 // then the driver sets used_event
		add       int    // and the device adds this many before checking
		want      bool
	}{
		{"first entry, event 0", 0, 0, 1, true},
		{"event already passed", 2, 0, 1, false},
		{"event is the entry added", 5, 5, 1, true},
		{"event is the next entry", 5, 6, 1, false},
		{"event inside a batch", 5, 7, 4, true},
		{"event just past a batch", 5, 9, 4, false},
		{"nothing added", 5, 5, 0, false},
		{"batch across the wrap", 65534, 65535, 3, true},
		{"event 0 reached across the wrap", 65534, 0, 3, true},
		{"event 1 not reached across the wrap", 65534, 1, 3, false},
		{"event behind across the wrap", 65534, 65533, 3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, d := newQueue(t, 64<<10, 8, eventIdx)
			d.WriteDesc(0, virtio.Descriptor{Addr: d.Alloc(1), Len: 1})
			complete(t, q, d, tt.start)
			needs(t, q, d)
			d.SetUsedEvent(tt.usedEvent)
			complete(t, q, d, tt.add)
			if got := needs(t, q, d); got != tt.want {
				t.Fatalf("NeedsNotification = %v, want %v (used.idx %d)", got, tt.want, d.UsedIdx())
			}
		})
	}
}

func TestNeedsNotification_EventIdxIgnoresFlags(t *testing.T) {
	q, d := newQueue(t, 64<<10, 8, eventIdx)
	d.WriteDesc(0, virtio.Descriptor{Addr: d.Alloc(1), Len: 1})
	d.SetAvailFlags(virtio.AvailFNoInterrupt)
	d.SetUsedEvent(0)
	complete(t, q, d, 1)
	if !needs(t, q, d) {
		t.Fatal("VIRTQ_AVAIL_F_NO_INTERRUPT honoured with VIRTIO_F_EVENT_IDX")
	}
}

// TestPop_PublishesAvailEvent: with VIRTIO_F_EVENT_IDX a device that finds
// the ring empty asks to be notified of the next entry (§2.7.10).
func TestPop_PublishesAvailEvent(t *testing.T) {
	q, d := newQueue(t, 64<<10, 8, eventIdx)
	d.WriteDesc(0, virtio.Descriptor{Addr: d.Alloc(1), Len: 1})
	complete(t, q, d, 3)
	if c, err := q.Pop(d.Mem()); c != nil || err != nil {
		t.Fatalf("Pop = %v, %v on an empty ring", c, err)
	}
	if got := d.AvailEvent(); got != 3 {
		t.Fatalf("avail_event = %d, want 3", got)
	}
}
