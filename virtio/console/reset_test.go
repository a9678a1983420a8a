package console_test

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/virtio/console"
)

// TestReset_Prompt resets the device while the feeder waits for each
// thing it can wait for; Reset must return (guest.reset fails the test
// after testTimeout), including while the pump is stuck in a Read that
// never returns.
func TestReset_Prompt(t *testing.T) {
	for _, state := range []string{"input", "open", "buffers", "ended"} {
		t.Run(state, func(t *testing.T) {
			stdin, w := pipe(t)
			g := newGuest(t, stdioPorts(stdin, &sink{}, &sink{}))
			g.activate(featMultiport)
			g.handshake()
			switch state {
			case "open":
				feed(w, []byte("x"))
			case "buffers":
				feed(w, pattern(100<<10, 1))
				g.setOpen(0, true)
			case "ended":
				feed(w, nil)
			}
			g.waitFeeder(0, state)
			g.reset()
			if st := g.dev.FeederState(0); st != "none" {
				t.Errorf("feeder %s after Reset", st)
			}
			if err := g.dev.Notify(rxq(0)); err == nil {
				t.Error("Notify after Reset succeeded")
			}
		})
	}
}

// TestReset_KeepsUndeliveredInput: input the guest had no buffers for
// when the device was reset arrives, whole and in order, after the driver
// starts it again; the port it had open is reported closed.
func TestReset_KeepsUndeliveredInput(t *testing.T) {
	stdin, w := pipe(t)
	var opened []bool
	ports := stdioPorts(stdin, &sink{}, &sink{})
	ports[0].OnGuestOpen = func(open bool) { opened = append(opened, open) }
	g := newGuest(t, ports)
	g.activate(featMultiport)
	g.handshake()
	data := pattern(300<<10, 5)
	fed := feed(w, data)
	g.setOpen(0, true)
	g.waitFeeder(0, "buffers")
	got := g.readRX(0)
	g.waitFeeder(0, "buffers")
	got = append(got, g.readRX(0)...)
	g.waitFeeder(0, "buffers")
	got = append(got, g.readRX(0)...) // kicks a feeder that Reset may catch mid-way
	g.reset()
	if !slices.Equal(opened, []bool{true, false}) {
		t.Errorf("OnGuestOpen heard %v, want [true false]", opened)
	}
	// What the feeder put into the old rings is the guest's; read it
	// before the new layout wipes them.
	for _, e := range g.drv[rxq(0)].Used() {
		got = append(got, g.drv[rxq(0)].Written(uint16(e.ID))[:e.Len]...)
	}

	g.layout()
	g.activate(featMultiport)
	g.handshake()
	g.setOpen(0, true)
	got = append(got, g.readUntilEnd(0)...)
	<-fed
	if !bytes.Equal(got, data) {
		t.Errorf("guest read %d bytes, want %d; first difference at %d", len(got), len(data), firstDiff(got, data))
	}
}

// TestClose_StopsPump: Close ends a pump waiting to hand over a chunk; a
// pump stuck in Read ends when its reader is closed.
func TestClose_StopsPump(t *testing.T) {
	stdin, w := pipe(t)
	g := newGuest(t, []console.Port{{Name: "in", In: stdin}})
	g.activate(featMultiport)
	g.waitFeeder(0, "input")
	done := make(chan error)
	go func() {
		_, err := w.Write(pattern(3*32<<10, 1)) // more than the pump holds: blocks
		done <- err
	}()
	g.waitFeeder(0, "open")
	if err := g.dev.Close(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	select {
	case <-done:
	case <-time.After(testTimeout):
		t.Fatal("the host's writer stayed blocked after Close")
	}
}
