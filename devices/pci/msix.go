package pci

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

// MSI-X table entry layout (§6.8.2.6–§6.8.2.9): 16 bytes per vector,
// little-endian.
const (
	MSIXEntrySize    = 16
	MSIXOffAddrLo    = 0      // Message Address, bits 31:2 (bits 1:0 read 0: DWORD aligned)
	MSIXOffAddrHi    = 4      // Message Upper Address
	MSIXOffData      = 8      // Message Data
	MSIXOffVectorCtl = 12     // Vector Control
	MSIXVectorMasked = 1 << 0 // Vector Control bit 0: Mask Bit, set at reset
	MaxMSIXVectors   = MSIXCtlSizeMask + 1

	msixAddrLoWritable    = 0xFC // low byte of Message Address: bits 1:0 reserved
	msixVectorCtlWritable = MSIXVectorMasked
	pbaWordSize           = 8  // the PBA is an array of QWORDs, one bit per vector (§6.8.2.10)
	pbaWordBits           = 64 // vectors per PBA QWORD
)

// Message is what an MSI-X vector writes: Data to Addr.
type Message struct {
	Addr uint64
	Data uint32
}

// MSIX is a function's MSI-X table and Pending Bit Array as seen through
// the memory BAR that holds them, and the enable and function-mask state its
// capability's Message Control sets (Config.AddMSIXCapability).
//
// A device raises a vector with Notify. While the vector or the whole
// function is masked the vector's pending bit is set instead, and the
// message goes out when it is unmasked (§6.8.2.9). Delivery is a call to
// fire; nothing here knows how the VMM injects it.
type MSIX struct {
	// fire delivers a message. It runs with m's lock held (and, when an
	// unmask through config space sends it, the Config's): it must not call
	// back into this MSIX or its Config.
	fire func(vector int, msg Message)

	mu         sync.Mutex
	table      []byte   // vectors * MSIXEntrySize
	pba        []uint64 // bit v%pbaWordBits of pba[v/pbaWordBits] is vector v's pending bit
	enabled    bool     // Message Control: MSI-X Enable
	funcMasked bool     // Message Control: Function Mask
}

// NewMSIX returns a table of vectors entries (1–2048), all masked, with MSI-X
// disabled; fire delivers messages.
func NewMSIX(vectors int, fire func(vector int, msg Message)) (*MSIX, error) {
	if vectors < 1 || vectors > MaxMSIXVectors {
		return nil, fmt.Errorf("MSI-X: %d vectors, want 1 to %d", vectors, MaxMSIXVectors)
	}
	if fire == nil {
		return nil, errors.New("MSI-X: nil fire")
	}
	m := &MSIX{
		fire:  fire,
		table: make([]byte, vectors*MSIXEntrySize),
		pba:   make([]uint64, (vectors+pbaWordBits-1)/pbaWordBits),
	}
	for v := range vectors {
		m.table[v*MSIXEntrySize+MSIXOffVectorCtl] = MSIXVectorMasked
	}
	return m, nil
}

// Vectors returns the number of table entries.
func (m *MSIX) Vectors() int { return len(m.table) / MSIXEntrySize }

// TableSize returns the size in bytes of the table region.
func (m *MSIX) TableSize() uint64 { return uint64(len(m.table)) }

// PBASize returns the size in bytes of the PBA region.
func (m *MSIX) PBASize() uint64 { return uint64(len(m.pba)) * pbaWordSize }

// ReadTable reads the table at off. The spec allows only aligned DWORD and
// QWORD accesses (§6.8.2); other widths work bytewise, and bytes past the
// table read 0.
func (m *MSIX) ReadTable(off uint64, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range data {
		data[i] = 0
		if o, ok := inRegion(off, i, len(m.table)); ok {
			data[i] = m.table[o]
		}
	}
}

// WriteTable writes the table at off. Clearing a vector's Mask Bit while its
// pending bit is set sends its message.
func (m *MSIX) WriteTable(off uint64, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	first, last := -1, -1
	for i, b := range data {
		o, ok := inRegion(off, i, len(m.table))
		if !ok {
			break
		}
		m.table[o] = m.table[o]&^entryWritable(o) | b&entryWritable(o)
		if first < 0 {
			first = o / MSIXEntrySize
		}
		last = o / MSIXEntrySize
	}
	for v := first; v >= 0 && v <= last; v++ {
		m.deliverPending(v)
	}
}

// entryWritable returns the bits of table byte o the guest may write.
func entryWritable(o int) byte {
	switch e := o % MSIXEntrySize; {
	case e == MSIXOffAddrLo:
		return msixAddrLoWritable
	case e < MSIXOffVectorCtl:
		return 0xFF
	case e == MSIXOffVectorCtl:
		return msixVectorCtlWritable
	}
	return 0 // Vector Control bits 31:8 are reserved
}

// ReadPBA reads the Pending Bit Array at off; bytes past it read 0.
func (m *MSIX) ReadPBA(off uint64, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range data {
		data[i] = 0
		if o, ok := inRegion(off, i, len(m.pba)*pbaWordSize); ok {
			data[i] = byte(m.pba[o/pbaWordSize] >> (8 * (o % pbaWordSize)))
		}
	}
}

// WritePBA ignores the write: the PBA is read-only (§6.8.2.10).
func (m *MSIX) WritePBA(off uint64, data []byte) {}

// Message returns vector's entry and whether it is masked, by its own Mask
// Bit or the function's. A vector out of range reads as masked and empty.
func (m *MSIX) Message(vector int) (addr uint64, data uint32, masked bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if vector < 0 || vector >= m.Vectors() {
		return 0, 0, true
	}
	msg := m.message(vector)
	return msg.Addr, msg.Data, m.masked(vector)
}

// Pending reports vector's pending bit.
func (m *MSIX) Pending(vector int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return vector >= 0 && vector < m.Vectors() && m.pending(vector)
}

// Enabled reports whether the guest has enabled MSI-X. While it has not, the
// function signals with INTx instead.
func (m *MSIX) Enabled() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.enabled
}

// Notify raises vector: it fires now, or sets the pending bit if the vector
// is masked. It returns false, doing nothing, when MSI-X is disabled or the
// vector does not exist; the caller then falls back to INTx.
func (m *MSIX) Notify(vector int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.enabled || vector < 0 || vector >= m.Vectors() {
		return false
	}
	if m.masked(vector) {
		m.pba[vector/pbaWordBits] |= 1 << (vector % pbaWordBits)
		return true
	}
	m.fire(vector, m.message(vector))
	return true
}

// setControl applies Message Control's Enable and Function Mask; unmasking
// the function (or enabling it) sends every pending, unmasked vector.
func (m *MSIX) setControl(enabled, funcMasked bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.enabled, m.funcMasked = enabled, funcMasked
	for v := range m.Vectors() {
		m.deliverPending(v)
	}
}

// deliverPending sends vector's message and clears its pending bit if it is
// pending and no longer masked. The caller holds m.mu.
func (m *MSIX) deliverPending(vector int) {
	if !m.enabled || !m.pending(vector) || m.masked(vector) {
		return
	}
	m.pba[vector/pbaWordBits] &^= 1 << (vector % pbaWordBits)
	m.fire(vector, m.message(vector))
}

func (m *MSIX) pending(vector int) bool {
	return m.pba[vector/pbaWordBits]&(1<<(vector%pbaWordBits)) != 0
}

func (m *MSIX) masked(vector int) bool {
	return m.funcMasked || m.table[vector*MSIXEntrySize+MSIXOffVectorCtl]&MSIXVectorMasked != 0
}

func (m *MSIX) message(vector int) Message {
	e := m.table[vector*MSIXEntrySize:]
	return Message{
		Addr: uint64(binary.LittleEndian.Uint32(e[MSIXOffAddrLo:])) | uint64(binary.LittleEndian.Uint32(e[MSIXOffAddrHi:]))<<32,
		Data: binary.LittleEndian.Uint32(e[MSIXOffData:]),
	}
}

// inRegion returns off+i as an index into a region of size bytes, if it is one.
func inRegion(off uint64, i, size int) (int, bool) {
	o := off + uint64(i)
	if o < off || o >= uint64(size) {
		return 0, false
	}
	return int(o), true
}
