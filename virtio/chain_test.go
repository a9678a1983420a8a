package virtio_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/virtio"
	"github.com/vmm-dev/vmm/virtio/virtiotest"
)

const indirect = virtio.FeatureIndirectDesc

// TestQueuePop_HostileChain_NeedsReset offers one chain that breaks one
// rule of §2.7.5 per case: Pop must refuse it with that rule's error, hand
// the device nothing, write nothing to the used ring, and stop the queue.
func TestQueuePop_HostileChain_NeedsReset(t *testing.T) {
	const (
		memSize = 1 << 20
		end     = guestmem.GuestAddr(memSize)
	)
	tests := []struct {
		name     string
		features uint64
		add      func(d *virtiotest.Driver)
		want     error
		indirect bool // the offending descriptor is in an indirect table
	}{
		{"head out of range", 0, func(d *virtiotest.Driver) { d.Publish(d.Size()) }, virtio.ErrHeadOutOfRange, false},
		{"head far out of range", 0, func(d *virtiotest.Driver) { d.Publish(0xffff) }, virtio.ErrHeadOutOfRange, false},
		{"next out of range", 0, func(d *virtiotest.Driver) { d.AddNextOutOfRange() }, virtio.ErrNextOutOfRange, false},
		{"descriptor names itself", 0, func(d *virtiotest.Driver) { d.AddLoop(1) }, virtio.ErrChainLoop, false},
		{"loop of three", 0, func(d *virtiotest.Driver) { d.AddLoop(3) }, virtio.ErrChainLoop, false},
		{"loop through the whole table", 0, func(d *virtiotest.Driver) { d.AddLoop(int(d.Size())) }, virtio.ErrChainLoop, false},
		{"buffer runs past memory", 0, func(d *virtiotest.Driver) { d.AddBuffer(end-4, 8, 0) }, virtio.ErrBufferOutOfMemory, false},
		{"buffer starts past memory", 0, func(d *virtiotest.Driver) { d.AddBuffer(end+0x1000, 1, virtio.DescFWrite) }, virtio.ErrBufferOutOfMemory, false},
		{"empty buffer past memory", 0, func(d *virtiotest.Driver) { d.AddBuffer(end+1, 0, 0) }, virtio.ErrBufferOutOfMemory, false},
		{"buffer wraps the address space", 0, func(d *virtiotest.Driver) { d.AddBuffer(^guestmem.GuestAddr(3), 16, 0) }, virtio.ErrBufferOutOfMemory, false},
		{"huge writable length", 0, func(d *virtiotest.Driver) { d.AddBuffer(0x1000, 0xffff_ffff, virtio.DescFWrite) }, virtio.ErrBufferOutOfMemory, false},
		{"writable before readable", 0, func(d *virtiotest.Driver) { d.AddWritableBeforeReadable() }, virtio.ErrReadableAfterWritable, false},
		{"indirect not negotiated", 0, func(d *virtiotest.Driver) {
			d.AddIndirect([]virtio.Descriptor{{Addr: d.Alloc(1), Len: 1}}, 0)
		}, virtio.ErrIndirectNotNegotiated, false},
		{"indirect with next", indirect, func(d *virtiotest.Driver) {
			d.AddIndirect([]virtio.Descriptor{{Addr: d.Alloc(1), Len: 1}}, virtio.DescFNext)
		}, virtio.ErrIndirectWithNext, false},
		{"nested indirect", indirect, func(d *virtiotest.Driver) { d.AddNestedIndirect() }, virtio.ErrNestedIndirect, true},
		{"indirect table empty", indirect, func(d *virtiotest.Driver) { d.AddBuffer(d.Alloc(16), 0, virtio.DescFIndirect) }, virtio.ErrIndirectTableLen, false},
		{"indirect table not a multiple of 16", indirect, func(d *virtiotest.Driver) { d.AddBuffer(d.Alloc(32), 24, virtio.DescFIndirect) }, virtio.ErrIndirectTableLen, false},
		{"indirect table too large", indirect, func(d *virtiotest.Driver) {
			d.AddBuffer(0, (virtio.MaxIndirectDescs+1)*virtio.DescSize, virtio.DescFIndirect)
		}, virtio.ErrIndirectTableTooLarge, false},
		{"indirect table past memory", indirect, func(d *virtiotest.Driver) { d.AddBuffer(end-16, 32, virtio.DescFIndirect) }, virtio.ErrIndirectTableOutOfMemory, false},
		{"indirect next out of range", indirect, func(d *virtiotest.Driver) { d.AddIndirectNextOutOfRange() }, virtio.ErrIndirectNextOutOfRange, true},
		{"indirect loop", indirect, func(d *virtiotest.Driver) { d.AddIndirectLoop(4) }, virtio.ErrChainLoop, true},
		{"indirect buffer past memory", indirect, func(d *virtiotest.Driver) {
			d.AddIndirect([]virtio.Descriptor{{Addr: end, Len: 1}}, 0)
		}, virtio.ErrBufferOutOfMemory, true},
		{"indirect writable before readable", indirect, func(d *virtiotest.Driver) {
			buf := d.Alloc(2)
			d.AddIndirect([]virtio.Descriptor{
				{Addr: buf, Len: 1, Flags: virtio.DescFWrite | virtio.DescFNext, Next: 1},
				{Addr: buf + 1, Len: 1},
			}, 0)
		}, virtio.ErrReadableAfterWritable, true},
		{"writable direct, then readable in the indirect table", indirect, func(d *virtiotest.Driver) {
			table := d.PutTable([]virtio.Descriptor{{Addr: d.Alloc(1), Len: 1}})
			head := d.AddDescs([]virtio.Descriptor{
				{Addr: d.Alloc(1), Len: 1, Flags: virtio.DescFWrite},
				{Addr: table, Len: virtio.DescSize, Flags: virtio.DescFIndirect},
			})
			d.Publish(head)
		}, virtio.ErrReadableAfterWritable, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, d := newQueue(t, memSize, 16, tt.features)
			tt.add(d)
			c, err := q.Pop(d.Mem())
			assertChainError(t, c, err, tt.want, tt.indirect)
			if d.UsedIdx() != 0 {
				t.Errorf("used.idx = %d after a refused chain", d.UsedIdx())
			}
			if q.Err() != err {
				t.Errorf("queue not broken: Err() = %v", q.Err())
			}
		})
	}
}

func assertChainError(t *testing.T, c *virtio.Chain, err, want error, indirect bool) {
	t.Helper()
	if c != nil {
		t.Fatalf("Pop returned a chain (head %d) with error %v", c.Head(), err)
	}
	if !errors.Is(err, want) || !errors.Is(err, virtio.ErrNeedsReset) {
		t.Fatalf("Pop = %v, want %v and ErrNeedsReset", err, want)
	}
	var ce *virtio.ChainError
	if !errors.As(err, &ce) {
		t.Fatalf("Pop = %T, want *ChainError", err)
	}
	if ce.Indirect != indirect {
		t.Errorf("ChainError.Indirect = %v, want %v (%v)", ce.Indirect, indirect, err)
	}
	if errors.Is(want, virtio.ErrBufferOutOfMemory) && !errors.Is(err, guestmem.ErrOutOfRange) {
		t.Errorf("%v does not carry the guestmem cause", err)
	}
}

// TestQueuePop_LengthOverflow builds chains whose buffers all lie in guest
// memory but add up to 2^32 bytes or more: 2049 descriptors naming the same
// 2 MiB buffer.
func TestQueuePop_LengthOverflow(t *testing.T) {
	const count, bufLen = 2049, 2 << 20
	tests := []struct {
		name     string
		flags    uint16
		indirect bool
	}{
		{"readable", 0, false},
		{"writable", virtio.DescFWrite, false},
		{"readable in an indirect table", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, d := newQueue(t, 4<<20, 4096, indirect)
			buf := d.Alloc(bufLen)
			if tt.indirect {
				descs := make([]virtio.Descriptor, count)
				for i := range descs {
					descs[i] = virtio.Descriptor{Addr: buf, Len: bufLen, Flags: tt.flags | virtio.DescFNext, Next: uint16(i + 1)}
				}
				descs[count-1].Flags &^= virtio.DescFNext
				d.AddIndirect(descs, 0)
			} else {
				d.AddRepeated(count, buf, bufLen, tt.flags)
			}
			c, err := q.Pop(d.Mem())
			assertChainError(t, c, err, virtio.ErrLengthOverflow, tt.indirect)
		})
	}
}

// TestQueuePop_ValidChains covers the shapes §2.7.5 allows, including the
// unusual ones.
func TestQueuePop_ValidChains(t *testing.T) {
	tests := []struct {
		name              string
		add               func(d *virtiotest.Driver) uint16
		readLen, writeLen uint32
	}{
		{"readable and writable", func(d *virtiotest.Driver) uint16 {
			return d.AddChain([][]byte{[]byte("abc"), []byte("de")}, []int{7})
		}, 5, 7},
		{"writable only", func(d *virtiotest.Driver) uint16 { return d.AddChain(nil, []int{1, 2, 3}) }, 0, 6},
		{"indirect", func(d *virtiotest.Driver) uint16 {
			return d.AddIndirectChain([][]byte{[]byte("abc")}, []int{4, 4})
		}, 3, 8},
		{"direct then indirect (§2.7.5.3.2)", func(d *virtiotest.Driver) uint16 {
			table := d.PutTable([]virtio.Descriptor{{Addr: d.Alloc(5), Len: 5, Flags: virtio.DescFWrite}})
			head := d.AddDescs([]virtio.Descriptor{
				{Addr: d.Alloc(2), Len: 2},
				{Addr: table, Len: virtio.DescSize, Flags: virtio.DescFIndirect},
			})
			d.Publish(head)
			return head
		}, 2, 5},
		{"WRITE on the descriptor naming a table is ignored", func(d *virtiotest.Driver) uint16 {
			return d.AddIndirect([]virtio.Descriptor{{Addr: d.Alloc(3), Len: 3}}, virtio.DescFWrite)
		}, 3, 0},
		{"zero-length buffers", func(d *virtiotest.Driver) uint16 { return d.AddChain([][]byte{{}}, []int{0}) }, 0, 0},
		{"as long as the queue", func(d *virtiotest.Driver) uint16 {
			return d.AddRepeated(int(d.Size()), d.Alloc(1), 1, 0)
		}, 16, 0},
		{"indirect table longer than the queue", func(d *virtiotest.Driver) uint16 {
			return d.AddIndirectChain(make([][]byte, 100), []int{1})
		}, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, d := newQueue(t, 1<<20, 16, indirect)
			head := tt.add(d)
			c := mustPop(t, q, d)
			if c.Head() != head || c.ReadableLen() != tt.readLen || c.WritableLen() != tt.writeLen {
				t.Fatalf("chain head %d, %d readable, %d writable; want %d, %d, %d",
					c.Head(), c.ReadableLen(), c.WritableLen(), head, tt.readLen, tt.writeLen)
			}
		})
	}
}

// TestChain_ImmuneToTableRewrite: once popped, a chain keeps the buffers it
// was validated with, whatever the driver writes to the table afterwards.
func TestChain_ImmuneToTableRewrite(t *testing.T) {
	q, d := newQueue(t, 1<<20, 8, 0)
	head := d.AddChain([][]byte{[]byte("payload")}, nil)
	c := mustPop(t, q, d)
	d.WriteDesc(head, virtio.Descriptor{Addr: 1 << 40, Len: 0xffff_ffff})
	got, err := io.ReadAll(c.Reader())
	if err != nil || !bytes.Equal(got, []byte("payload")) {
		t.Fatalf("read %q, %v; want the original payload", got, err)
	}
}
