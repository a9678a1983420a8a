package pcitransport

// Registers is BAR0 as the MMIO bus sees it: offsets are relative to the
// BAR's base.
type Registers struct{ t *Transport }

// BAR0 returns the device the VMM places on the MMIO bus at BAR0's
// address (see Config().OnBARChange).
func (t *Transport) BAR0() Registers { return Registers{t} }

// in reports whether [off, off+n) lies inside [start, start+size), and
// returns off relative to start.
func in(off uint64, n int, start, size uint64) (uint64, bool) {
	if off < start || off-start >= size || uint64(n) > size-(off-start) {
		return 0, false
	}
	return off - start, true
}

// Read reads len(data) bytes of BAR0 at off. Accesses of the wrong width,
// and bytes that are no register, read 0.
func (r Registers) Read(off uint64, data []byte) {
	clear(data)
	t := r.t
	if o, ok := in(off, len(data), commonOffset, commonCfgLen); ok {
		t.mu.Lock()
		v, ok := t.readCommon(o, len(data))
		t.mu.Unlock()
		if ok {
			putLE(data, v)
		}
		return
	}
	if o, ok := in(off, len(data), isrOffset, isrLen); ok && o == 0 && len(data) == isrLen {
		data[0] = t.readISR()
		return
	}
	if o, ok := in(off, len(data), deviceOffset, deviceCfgSize); ok && configWidth(len(data)) {
		t.dev.ReadConfig(o, data)
		return
	}
	if o, ok := in(off, len(data), msixTableOff, t.msix.TableSize()); ok && msixAccess(o, len(data)) {
		t.msix.ReadTable(o, data)
		return
	}
	if o, ok := in(off, len(data), t.pbaOffset, t.msix.PBASize()); ok && msixAccess(o, len(data)) {
		t.msix.ReadPBA(o, data)
	}
}

// Write writes data to BAR0 at off. Accesses of the wrong width, and bytes
// that are no register, are ignored.
func (r Registers) Write(off uint64, data []byte) {
	t := r.t
	if o, ok := in(off, len(data), commonOffset, commonCfgLen); ok {
		if len(data) == 0 || len(data) > 8 {
			return
		}
		t.writeCommon(o, len(data), getLE(data))
		return
	}
	if o, ok := in(off, len(data), deviceOffset, deviceCfgSize); ok && configWidth(len(data)) {
		t.dev.WriteConfig(o, data)
		return
	}
	if o, ok := in(off, len(data), notifyOffset, uint64(len(t.qregs))*NotifyOffMultiplier); ok {
		if o%NotifyOffMultiplier == 0 && len(data) == notifyWidth {
			t.notify(int(o / NotifyOffMultiplier))
		}
		return
	}
	if o, ok := in(off, len(data), msixTableOff, t.msix.TableSize()); ok && msixAccess(o, len(data)) {
		t.msix.WriteTable(o, data)
	}
	// The ISR status and the PBA are read-only.
}

// notifyWidth is the size of an available buffer notification without
// VIRTIO_F_NOTIFICATION_DATA: the 16-bit queue index (§4.1.5.2).
const notifyWidth = 2

// configWidth reports whether n is a width the device configuration
// accepts; its fields are 8 to 64 bits (§4.1.3.1).
func configWidth(n int) bool { return n == 1 || n == 2 || n == 4 || n == 8 }

// msixAccess reports whether an MSI-X table or PBA access is an aligned
// DWORD or QWORD, the only kinds §6.8.2 of PCI 3.0 allows.
func msixAccess(off uint64, n int) bool {
	return (n == 4 || n == 8) && off%uint64(n) == 0
}

// putLE stores the low len(data) bytes of v, little-endian.
func putLE(data []byte, v uint64) {
	for i := range data {
		data[i] = byte(v >> (8 * i))
	}
}

// getLE reads up to 8 bytes, little-endian.
func getLE(data []byte) uint64 {
	var v uint64
	for i, b := range data {
		v |= uint64(b) << (8 * i)
	}
	return v
}
