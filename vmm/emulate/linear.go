package emulate

import (
	"encoding/binary"
	"fmt"

	"github.com/vmm-dev/vmm/guestmem"
)

const pageSize = 4096

// linear is guest memory by linear address, translated through the vCPU's
// page tables one page at a time, so an access that crosses a page boundary
// takes two translations.
type linear struct {
	cpu CPU
	mem *guestmem.Memory
}

// span is the part of a linear range that lies in one page, and the
// guest-physical address that part maps to.
type span struct {
	phys guestmem.GuestAddr
	n    int
}

// spans translates [addr, addr+n) page by page and checks each piece is RAM
// (and writable when write is set, under the CR0.WP rule for supervisor
// writes, given as wp).
func (l linear) spans(addr uint64, n int, write, wp bool) ([]span, error) {
	var out []span
	for n > 0 {
		chunk := min(n, pageSize-int(addr%pageSize))
		t, err := l.cpu.Translate(addr)
		if err != nil {
			return nil, fmt.Errorf("emulate: %w", err)
		}
		if t.Valid == 0 {
			return nil, faultf(VectorPF, "linear address %#x is not mapped", addr)
		}
		if write && wp && t.Writeable == 0 {
			return nil, faultf(VectorPF, "linear address %#x is mapped read-only", addr)
		}
		phys := guestmem.GuestAddr(t.PhysicalAddress)
		if !l.mem.Contains(phys, uint64(chunk)) {
			return nil, faultf(VectorPF, "linear address %#x maps to %v, outside guest RAM", addr, phys)
		}
		out = append(out, span{phys: phys, n: chunk})
		addr += uint64(chunk)
		n -= chunk
	}
	return out, nil
}

// read returns the n bytes at linear address addr.
func (l linear) read(addr uint64, n int) ([]byte, error) {
	sp, err := l.spans(addr, n, false, false)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 0, n)
	for _, s := range sp {
		b, err := l.mem.Slice(s.phys, uint64(s.n))
		if err != nil {
			return nil, fmt.Errorf("emulate: %w", err)
		}
		buf = append(buf, b...)
	}
	return buf, nil
}

// readPrefix reads up to n bytes at addr and stops at the first page that
// cannot be read, returning what came before it and why it stopped.
func (l linear) readPrefix(addr uint64, n int) ([]byte, error) {
	var buf []byte
	for len(buf) < n {
		chunk := min(n-len(buf), pageSize-int(addr%pageSize))
		b, err := l.read(addr, chunk)
		if err != nil {
			return buf, err
		}
		buf = append(buf, b...)
		addr += uint64(chunk)
	}
	return buf, nil
}

// readUint64 reads a little-endian quadword at addr.
func (l linear) readUint64(addr uint64) (uint64, error) {
	b, err := l.read(addr, 8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// store writes data over spans that spans() has already checked.
func (l linear) store(sp []span, data []byte) error {
	for _, s := range sp {
		if err := l.mem.WriteAt(data[:s.n], s.phys); err != nil {
			return fmt.Errorf("emulate: %w", err)
		}
		data = data[s.n:]
	}
	return nil
}
