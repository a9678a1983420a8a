package console_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/virtio"
	"github.com/vmm-dev/vmm/virtio/console"
	"github.com/vmm-dev/vmm/virtio/virtiotest"
)

const (
	testQueueSize = 64
	// testSlab is each queue's share of guest memory: its rings and the
	// fake driver's buffers, which it never frees.
	testSlab = 2 << 20
	// testTimeout bounds every wait for a goroutine; tests never assert
	// on timing.
	testTimeout = virtiotest.Timeout
	// Linux posts page-sized receive buffers, and sends at most 32 KiB
	// per transmit chain.
	pageSize      = 4096
	linuxMaxWrite = 32 << 10
	// rxBuffers is how many receive buffers the fake guest posts per port.
	rxBuffers = 16
)

// Values from virtio 1.2 §5.3, spelled out here rather than taken from the
// package, so that a wrong constant there fails here.
const (
	featMultiport = 1 << 1
	ctlRX, ctlTX  = 2, 3

	evDeviceReady = 0
	evPortAdd     = 1
	evPortRemove  = 2
	evPortReady   = 3
	evConsolePort = 4
	evResize      = 5
	evPortOpen    = 6
	evPortName    = 7

	badID = 0xffffffff // VIRTIO_CONSOLE_BAD_ID
)

// rxq and txq are port's queues as §5.3.2 lists them.
func rxq(port int) int {
	if port == 0 {
		return 0
	}
	return 2 + 2*port
}

func txq(port int) int { return rxq(port) + 1 }

// msg is a struct virtio_console_control, with the name that follows a
// PORT_NAME.
type msg struct {
	id           uint32
	event, value uint16
	name         string
}

func (m msg) bytes() []byte {
	b := make([]byte, 8, 8+len(m.name))
	binary.LittleEndian.PutUint32(b, m.id)
	binary.LittleEndian.PutUint16(b[4:], m.event)
	binary.LittleEndian.PutUint16(b[6:], m.value)
	return append(b, m.name...)
}

func (m msg) String() string {
	names := []string{"DEVICE_READY", "PORT_ADD", "PORT_REMOVE", "PORT_READY", "CONSOLE_PORT", "RESIZE", "PORT_OPEN", "PORT_NAME"}
	ev := fmt.Sprint(m.event)
	if int(m.event) < len(names) {
		ev = names[m.event]
	}
	if m.event == evPortName {
		return fmt.Sprintf("%s(%d, %d, %q)", ev, m.id, m.value, m.name)
	}
	return fmt.Sprintf("%s(%d, %d)", ev, m.id, m.value)
}

func parseMsg(t testing.TB, b []byte) msg {
	t.Helper()
	if len(b) < 8 {
		t.Fatalf("control message of %d bytes: % x", len(b), b)
	}
	m := msg{id: binary.LittleEndian.Uint32(b), event: binary.LittleEndian.Uint16(b[4:]), value: binary.LittleEndian.Uint16(b[6:])}
	if len(b) > 8 {
		if m.event != evPortName {
			t.Fatalf("%v carries %d extra bytes", m, len(b)-8)
		}
		m.name = string(b[8:])
	}
	return m
}

// irqRecorder records the queues signalled, in order, from any goroutine.
type irqRecorder struct {
	mu       sync.Mutex
	seq      []int
	onSignal func(q int) // if set, runs on the signalling goroutine
}

func (r *irqRecorder) Signal(q int) error {
	r.mu.Lock()
	r.seq = append(r.seq, q)
	f := r.onSignal
	r.mu.Unlock()
	if f != nil {
		f(q)
	}
	return nil
}

func (r *irqRecorder) count(q int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range r.seq {
		if s == q {
			n++
		}
	}
	return n
}

func (r *irqRecorder) setHook(f func(q int)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.onSignal = f
}

// sink is an Out that keeps what it gets, safe from any goroutine; err,
// if set, fails every write.
type sink struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	err    error
	writes int
}

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	if s.err != nil {
		return 0, s.err
	}
	return s.buf.Write(p)
}

func (s *sink) bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.buf.Bytes())
}

func (s *sink) setErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

// guest plays Linux's virtio_console driver (drivers/char/virtio_console.c)
// over one fake driver per queue, each in its own slab of one guest
// memory.
type guest struct {
	t        testing.TB
	dev      *console.Device
	ram      []byte
	mem      *guestmem.Memory
	drv      []*virtiotest.Driver // by queue index
	irq      *irqRecorder
	errs     chan error // what OnError heard
	nports   int
	features uint64
}

// newGuest makes a device with the given ports and lays out its rings; it
// is not activated yet.
func newGuest(t testing.TB, ports []console.Port) *guest {
	t.Helper()
	g := &guest{t: t, irq: &irqRecorder{}, errs: make(chan error, 64), nports: len(ports)}
	dev, err := console.New(ports, console.Options{QueueSize: testQueueSize, OnError: func(err error) {
		select {
		case g.errs <- err:
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	g.dev = dev
	t.Cleanup(func() {
		g.reset()
		dev.Close()
	})
	nq := 2 * (len(ports) + 1)
	g.ram = make([]byte, nq*testSlab)
	g.mem = memView(t, 0, g.ram)
	g.layout()
	return g
}

// layout zeroes guest memory and lays out every queue's rings afresh.
func (g *guest) layout() {
	clear(g.ram)
	g.drv = nil
	for q := range 2 * (g.nports + 1) {
		start := q * testSlab
		g.drv = append(g.drv, virtiotest.New(g.t, memView(g.t, guestmem.GuestAddr(start), g.ram[start:start+testSlab]), testQueueSize))
	}
}

func memView(t testing.TB, start guestmem.GuestAddr, buf []byte) *guestmem.Memory {
	t.Helper()
	m, err := guestmem.NewFromBytes([]guestmem.RegionSpec{{Start: start, Size: uint64(len(buf))}}, [][]byte{buf})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// activate enables the queues a driver with these features enables (all
// of them with MULTIPORT, as Linux does; port 0's otherwise) and sets
// DRIVER_OK.
func (g *guest) activate(features uint64) {
	g.t.Helper()
	g.features = features
	qs := make([]*virtio.Queue, len(g.drv))
	for i, drv := range g.drv {
		if features&featMultiport == 0 && i > 1 {
			continue
		}
		q, err := virtio.NewQueue(g.dev.QueueMaxSizes()[i])
		if err != nil {
			g.t.Fatal(err)
		}
		if err := q.Enable(g.mem, drv.Config(features)); err != nil {
			g.t.Fatal(err)
		}
		qs[i] = q
	}
	if err := g.dev.Activate(g.mem, features, qs, g.irq); err != nil {
		g.t.Fatal(err)
	}
}

// reset resets the device, failing the test if that does not return.
func (g *guest) reset() {
	g.t.Helper()
	virtiotest.MustReturn(g.t, "Reset", g.dev.Reset)
}

// notify runs Notify(q), which must succeed.
func (g *guest) notify(q int) {
	g.t.Helper()
	if err := g.dev.Notify(q); err != nil {
		g.t.Fatalf("Notify(%d): %v", q, err)
	}
}

// postControlBuffers posts n page-sized control receive buffers and
// kicks, as Linux's fill_queue does.
func (g *guest) postControlBuffers(n int) {
	g.t.Helper()
	for range n {
		g.drv[ctlRX].AddChain(nil, []int{pageSize})
	}
	g.notify(ctlRX)
}

// send sends one control message and checks it came back at once, as
// Linux's __send_control_msg spins until it does.
func (g *guest) send(m msg) {
	g.t.Helper()
	g.sendRaw([][]byte{m.bytes()}, nil)
}

// sendRaw sends a control chain of any shape and checks it came back
// with nothing written.
func (g *guest) sendRaw(readable [][]byte, writable []int) {
	g.t.Helper()
	head := g.drv[ctlTX].AddChain(readable, writable)
	g.notify(ctlTX)
	if u := g.drv[ctlTX].Used(); len(u) != 1 || u[0] != (virtiotest.UsedElem{ID: uint32(head)}) {
		g.t.Fatalf("control chain %d came back as %+v", head, u)
	}
}

// recv returns the control messages the device sent, in order, reposting
// each buffer as Linux's control_work_handler does; the kick can bring
// more, which it takes too.
func (g *guest) recv() []msg {
	g.t.Helper()
	var out []msg
	for {
		u := g.drv[ctlRX].Used()
		if len(u) == 0 {
			return out
		}
		for _, e := range u {
			out = append(out, parseMsg(g.t, g.drv[ctlRX].Written(uint16(e.ID))[:e.Len]))
		}
		g.postControlBuffers(len(u))
	}
}

// addPort is Linux's add_port: the port's receive buffers, then
// PORT_READY.
func (g *guest) addPort(id int) {
	g.t.Helper()
	for range rxBuffers {
		g.drv[rxq(id)].AddChain(nil, []int{pageSize})
	}
	g.notify(rxq(id))
	g.send(msg{id: uint32(id), event: evPortReady, value: 1})
}

// handshake is Linux's probe: control buffers and DEVICE_READY, then, for
// each PORT_ADD as it handles it, add_port. It returns every message the
// device sent, in order.
func (g *guest) handshake() []msg {
	g.t.Helper()
	g.postControlBuffers(8)
	g.send(msg{id: badID, event: evDeviceReady, value: 1})
	var all []msg
	for queue := g.recv(); len(queue) > 0; {
		m := queue[0]
		queue = queue[1:]
		all = append(all, m)
		if m.event == evPortAdd {
			g.addPort(int(m.id))
		}
		if len(queue) == 0 {
			queue = g.recv()
		}
	}
	return all
}

// setOpen opens or closes the guest's end of a port (port_fops_open,
// port_fops_release).
func (g *guest) setOpen(id int, open bool) {
	g.t.Helper()
	v := uint16(0)
	if open {
		v = 1
	}
	g.send(msg{id: uint32(id), event: evPortOpen, value: v})
}

// write is the guest writing data to a port: one chain per 32 KiB, as
// port_fops_write sends it, kicked each.
func (g *guest) write(id int, data []byte) {
	g.t.Helper()
	for len(data) > 0 {
		n := min(len(data), linuxMaxWrite)
		g.writeChain(id, [][]byte{data[:n]})
		data = data[n:]
	}
}

// writeChain sends one transmit chain of the given buffers and checks it
// came back with nothing written.
func (g *guest) writeChain(id int, bufs [][]byte) {
	g.t.Helper()
	q := txq(id)
	head := g.drv[q].AddChain(bufs, nil)
	g.notify(q)
	if u := g.drv[q].Used(); len(u) != 1 || u[0] != (virtiotest.UsedElem{ID: uint32(head)}) {
		g.t.Fatalf("transmit chain %d came back as %+v", head, u)
	}
}

// readRX returns what the device put into port's receive buffers, in
// order, reposting each buffer and kicking. The feeder must be idle.
func (g *guest) readRX(id int) []byte {
	g.t.Helper()
	q := rxq(id)
	u := g.drv[q].Used()
	var out []byte
	for _, e := range u {
		if e.Len == 0 {
			g.t.Fatalf("receive buffer %d used with 0 bytes: Linux would read end of file", e.ID)
		}
		out = append(out, g.drv[q].Written(uint16(e.ID))[:e.Len]...)
	}
	for range u {
		g.drv[q].AddChain(nil, []int{pageSize})
	}
	if len(u) > 0 {
		g.notify(q)
	}
	return out
}

// readUntilEnd reads port until its feeder has delivered the whole input
// and closed the host end.
func (g *guest) readUntilEnd(id int) []byte {
	g.t.Helper()
	var got []byte
	for {
		st := g.waitFeeder(id, "buffers", "ended")
		got = append(got, g.readRX(id)...)
		if st == "ended" {
			return got
		}
	}
}

// waitFeeder waits until port's feeder is idle in one of the given
// states, and returns which.
func (g *guest) waitFeeder(id int, states ...string) string {
	g.t.Helper()
	var st string
	virtiotest.WaitFor(g.t, fmt.Sprintf("port %d's feeder to wait for %v", id, states), func() bool {
		st = g.dev.FeederState(id)
		return slices.Contains(states, st)
	})
	return st
}

// pattern is n bytes of every value, in an order that differs with seed:
// binary data, NULs and newlines included.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed)*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}
