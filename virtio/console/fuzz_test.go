package console_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/virtio"
	"github.com/vmm-dev/vmm/virtio/console"
	"github.com/vmm-dev/vmm/virtio/virtiotest"
)

// FuzzConsole's guest memory: two ports, so six queues, each with its
// rings in a fixed 0x200-byte slot, then a data area the input fills,
// inside guard bytes that must survive.
const (
	fzPorts    = 2
	fzQueues   = 2 * (fzPorts + 1)
	fzMemSize  = 0x4000
	fzGuard    = 0x1000
	fzGuardB   = 0xa5
	fzSlot     = 0x200 // per queue: descriptors at +0, avail at +0x80, used at +0x100
	fzData     = fzQueues * fzSlot
	fzHdrLen   = 4 + fzSteps
	fzSteps    = 8 // notifications an input makes
	fzMaxInput = 255
)

// Bits of an input's first byte.
const (
	fzMultiport = 1 << 0
	fzEventIdx  = 1 << 1
	fzIndirect  = 1 << 2
)

// fzRing is one queue's descriptor table and available ring (flags, idx,
// ring entries, used_event).
type fzRing struct {
	descs []virtio.Descriptor
	avail []uint16
}

// fuzzInput encodes an input: flags, log2 of every queue's size, the two
// ports' input lengths, the queues to notify in turn, the inputs, each
// queue's table and available ring padded to the queue size, and the
// data area.
func fuzzInput(flags, sizeExp byte, in0, in1 []byte, steps []byte, rings [fzQueues]fzRing, data []byte) []byte {
	b := []byte{flags, sizeExp, byte(len(in0)), byte(len(in1))}
	b = append(b, append(steps, make([]byte, fzSteps)...)[:fzSteps]...)
	b = append(append(b, in0...), in1...)
	size := 1 << (sizeExp % 4)
	for _, r := range rings {
		table := make([]virtio.Descriptor, size)
		copy(table, r.descs)
		for _, d := range table {
			b, _ = binary.Append(b, binary.LittleEndian, d)
		}
		ring := make([]uint16, 3+size)
		copy(ring, r.avail)
		for _, v := range ring {
			b = binary.LittleEndian.AppendUint16(b, v)
		}
	}
	return append(b, bytes.TrimRight(data, "\x00")...) // the data area starts zeroed
}

// FuzzConsole lays arbitrary bytes out as every queue's descriptor table,
// available ring and buffers, gives each port some input, then notifies
// queues in the order the input says and resets. Nothing may panic or
// hang; Notify and OnError report only NEEDS_RESET errors and the
// driver's own failures; a port gets no more input than the host had, and
// all of it once the host end closed; the writers get what the stats say;
// the host bytes around guest memory never change. The committed corpus
// is in testdata/fuzz/FuzzConsole.
func FuzzConsole(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		f.Add(seed)
	}
	f.Fuzz(fuzzConsole)
}

func fuzzConsole(t *testing.T, in []byte) {
	if len(in) < fzHdrLen {
		return
	}
	flags, size := in[0], uint16(1)<<(in[1]%4)
	var features uint64
	if flags&fzMultiport != 0 {
		features |= featMultiport
	}
	if flags&fzEventIdx != 0 {
		features |= virtio.FeatureEventIdx
	}
	if flags&fzIndirect != 0 {
		features |= virtio.FeatureIndirectDesc
	}
	n0, n1, steps := int(in[2]), int(in[3]), in[4:fzHdrLen]
	in = in[fzHdrLen:]
	if len(in) < n0+n1 {
		return
	}
	inputs := [][]byte{bytes.Clone(in[:n0]), bytes.Clone(in[n0 : n0+n1])}
	in = in[n0+n1:]

	host := bytes.Repeat([]byte{fzGuardB}, fzGuard+fzMemSize+fzGuard)
	ram := host[fzGuard : fzGuard+fzMemSize]
	clear(ram)
	for q := range fzQueues {
		slot := ram[q*fzSlot:]
		in = in[copy(slot[:virtio.DescTableSize(size)], in):]
		in = in[copy(slot[0x80:0x80+virtio.AvailRingSize(size)], in):]
	}
	copy(ram[fzData:], in)
	mem, err := guestmem.NewFromBytes([]guestmem.RegionSpec{{Start: 0, Size: fzMemSize}}, [][]byte{ram})
	if err != nil {
		t.Fatal(err)
	}

	fz := newFuzzRig(t, mem, features, size, inputs)
	nq := fzQueues
	if features&featMultiport == 0 {
		nq = 2
	}
	for _, s := range steps {
		q := int(s) % nq
		if err := fz.dev.Notify(q); err != nil && !errors.Is(err, virtio.ErrNeedsReset) {
			t.Fatalf("Notify(%d) = %v, not a NEEDS_RESET error", q, err)
		}
		fz.settle()
	}
	fz.reset()

	for i, b := range host {
		if (i < fzGuard || i >= fzGuard+fzMemSize) && b != fzGuardB {
			t.Fatalf("host byte %d outside guest memory changed", i-fzGuard)
		}
	}
	fz.check(inputs)
}

// fuzzRig is a device activated on rings laid out by a fuzz input.
type fuzzRig struct {
	t    *testing.T
	dev  *console.Device
	outs [fzPorts]*sink
}

func newFuzzRig(t *testing.T, mem *guestmem.Memory, features uint64, size uint16, inputs [][]byte) *fuzzRig {
	fz := &fuzzRig{t: t}
	var ports []console.Port
	for i := range fzPorts {
		fz.outs[i] = &sink{}
		ports = append(ports, console.Port{Name: string(rune('a' + i)), In: bytes.NewReader(inputs[i]), Out: fz.outs[i]})
	}
	dev, err := console.New(ports, console.Options{OnError: func(err error) {
		if !errors.Is(err, virtio.ErrNeedsReset) && !errors.Is(err, console.ErrDriverSetup) {
			t.Errorf("OnError heard %v", err)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	fz.dev = dev
	qs := make([]*virtio.Queue, fzQueues)
	for i := range qs {
		if features&featMultiport == 0 && i > 1 {
			continue
		}
		base := guestmem.GuestAddr(i * fzSlot)
		qs[i], _ = virtio.NewQueue(console.DefaultQueueSize)
		c := virtio.Config{Size: size, DescTable: base, AvailRing: base + 0x80, UsedRing: base + 0x100, Features: features}
		if err := qs[i].Enable(mem, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := dev.Activate(mem, features, qs, &irqRecorder{}); err != nil {
		t.Fatal(err)
	}
	fz.settle()
	return fz
}

// settle waits until every feeder is idle where only a notification can
// wake it: the inputs are in memory, so waiting for input passes.
func (fz *fuzzRig) settle() {
	deadline := time.Now().Add(testTimeout)
	for i := 0; i < fzPorts; {
		switch fz.dev.FeederState(i) {
		case "open", "buffers", "ended", "stopped", "none":
			i++
			continue
		}
		if time.Now().After(deadline) {
			fz.t.Fatalf("port %d's feeder did not settle", i)
		}
		time.Sleep(20 * time.Microsecond)
	}
}

func (fz *fuzzRig) reset() {
	virtiotest.MustReturn(fz.t, "Reset", fz.dev.Reset)
	fz.dev.Close()
}

// check compares what moved with the stats and the inputs.
func (fz *fuzzRig) check(inputs [][]byte) {
	s := fz.dev.Stats()
	for i, p := range s.Ports {
		if got := uint64(len(fz.outs[i].bytes())); got != p.TXBytes {
			fz.t.Errorf("port %d: writer got %d bytes, stats say %d", i, got, p.TXBytes)
		}
		if p.RXBytes > uint64(len(inputs[i])) {
			fz.t.Errorf("port %d: %d bytes delivered of %d", i, p.RXBytes, len(inputs[i]))
		}
		if !fz.dev.HostOpen(i) && p.RXBytes != uint64(len(inputs[i])) {
			fz.t.Errorf("port %d: host end closed after %d bytes of %d", i, p.RXBytes, len(inputs[i]))
		}
	}
}

// fuzzSeeds are the inputs f.Add starts from; the same are committed
// under testdata/fuzz/FuzzConsole. Their buffers do not overlap, so the
// race detector, which sees guest memory as Go memory, stays quiet when
// the feeders run beside Notify.
func fuzzSeeds() [][]byte {
	ctl := func(id uint32, event, value uint16) []byte { return msg{id: id, event: event, value: value}.bytes() }
	wr := func(off, n uint32) virtio.Descriptor {
		return virtio.Descriptor{Addr: fzData + guestmem.GuestAddr(off), Len: n, Flags: virtio.DescFWrite}
	}
	rd := func(off, n uint32) virtio.Descriptor {
		return virtio.Descriptor{Addr: fzData + guestmem.GuestAddr(off), Len: n}
	}
	// Data area: control messages at 0x000, output at 0x100, control
	// receive buffers at 0x400, port receive buffers at 0x800.
	data := make([]byte, 0x1000)
	copy(data[0x00:], ctl(badID, evDeviceReady, 1))
	copy(data[0x08:], ctl(0, evPortReady, 1))
	copy(data[0x10:], ctl(1, evPortReady, 1))
	copy(data[0x18:], ctl(1, evPortOpen, 1))
	copy(data[0x20:], ctl(0, evPortOpen, 1))
	copy(data[0x28:], ctl(7, evPortOpen, 1))    // no such port
	copy(data[0x30:], ctl(0, evResize, 1))      // not the driver's
	copy(data[0x38:], ctl(1, evPortOpen, 0x10)) // bad value
	copy(data[0x100:], "hello, host\n\x00\xff binary")

	var handshake [fzQueues]fzRing
	handshake[ctlRX] = fzRing{descs: []virtio.Descriptor{wr(0x400, 64), wr(0x440, 64), wr(0x480, 64), wr(0x4c0, 64)}, avail: []uint16{0, 4, 0, 1, 2, 3}}
	handshake[ctlTX] = fzRing{descs: []virtio.Descriptor{rd(0x00, 8), rd(0x08, 8), rd(0x10, 8), rd(0x18, 8)}, avail: []uint16{0, 4, 0, 1, 2, 3}}
	handshake[txq(0)] = fzRing{descs: []virtio.Descriptor{rd(0x100, 22)}, avail: []uint16{0, 1, 0}}
	handshake[rxq(1)] = fzRing{descs: []virtio.Descriptor{wr(0x800, 16), wr(0x900, 256)}, avail: []uint16{0, 2, 0, 1}}

	hostile := handshake
	hostile[ctlTX] = fzRing{descs: []virtio.Descriptor{rd(0x28, 8), rd(0x30, 8), rd(0x38, 8), rd(0x00, 7)}, avail: []uint16{0, 4, 0, 1, 2, 3}}

	var console0 [fzQueues]fzRing // without MULTIPORT: port 0 only
	console0[rxq(0)] = fzRing{descs: []virtio.Descriptor{wr(0x800, 64), wr(0x900, 64)}, avail: []uint16{0, 2, 0, 1}}
	console0[txq(0)] = handshake[txq(0)]

	indirect := handshake // EVENT_IDX and an indirect receive chain
	indirect[rxq(1)] = fzRing{descs: []virtio.Descriptor{{Addr: fzData + 0x600, Len: 2 * virtio.DescSize, Flags: virtio.DescFIndirect}}, avail: []uint16{0, 1, 0, 0}}
	indirectData := bytes.Clone(data)
	copy(indirectData[0x600:], fuzzTable([]virtio.Descriptor{
		{Addr: fzData + 0x800, Len: 8, Flags: virtio.DescFWrite | virtio.DescFNext, Next: 1},
		{Addr: fzData + 0x900, Len: 100, Flags: virtio.DescFWrite},
	}))

	broken := handshake // a looping control chain and avail.idx far ahead
	broken[ctlTX] = fzRing{descs: []virtio.Descriptor{
		{Addr: fzData, Len: 8, Flags: virtio.DescFNext, Next: 1},
		{Addr: fzData, Len: 8, Flags: virtio.DescFNext, Next: 0},
	}, avail: []uint16{0, 1, 0}}
	broken[rxq(1)] = fzRing{avail: []uint16{0, 100}}

	steps := []byte{ctlRX, ctlTX, 1, 4, ctlRX, ctlTX, 4, 5} // port 0 out, port 1 in and out
	stdin := []byte("stdin for the guest\n")
	return [][]byte{
		fuzzInput(fzMultiport, 2, nil, stdin, steps, handshake, data),
		fuzzInput(fzMultiport, 2, []byte("x"), nil, steps, hostile, data),
		fuzzInput(0, 1, stdin, []byte("unused"), []byte{0, 1, 0, 1}, console0, data),
		fuzzInput(fzMultiport|fzEventIdx|fzIndirect, 2, nil, bytes.Repeat([]byte{0, 1, 0xff}, 40), steps, indirect, indirectData),
		fuzzInput(fzMultiport|fzEventIdx, 3, nil, stdin, steps, broken, data),
	}
}

// fuzzTable encodes descriptors as an indirect table.
func fuzzTable(descs []virtio.Descriptor) []byte {
	var b []byte
	for _, d := range descs {
		b, _ = binary.Append(b, binary.LittleEndian, d)
	}
	return b
}
