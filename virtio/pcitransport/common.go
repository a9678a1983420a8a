package pcitransport

import (
	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/virtio"
)

// regWidth is the natural width of each common configuration register
// other than the 64-bit queue addresses; §4.1.3.1 has the driver use it,
// and any other access is ignored.
func regWidth(off uint64) int {
	switch off {
	case regDeviceFeatureSelect, regDeviceFeature, regDriverFeatureSelect, regDriverFeature:
		return 4
	case regConfigMSIXVector, regNumQueues, regQueueSelect, regQueueSize,
		regQueueMSIXVector, regQueueEnable, regQueueNotifyOff:
		return 2
	case regDeviceStatus, regConfigGeneration:
		return 1
	}
	return 0
}

// addrField reports whether an access of n bytes at off is to queue_desc,
// queue_driver or queue_device: the whole field with one 64-bit access, or
// either half with a 32-bit one (§4.1.3.1). It returns the field's offset
// and the bit position of the access within it.
func addrField(off uint64, n int) (field uint64, shift uint, ok bool) {
	if off < regQueueDesc || off >= regQueueDevice+8 {
		return 0, 0, false
	}
	field = regQueueDesc + (off-regQueueDesc)&^7
	switch {
	case n == 8 && off == field:
		return field, 0, true
	case n == 4 && (off == field || off == field+4):
		return field, uint(off-field) * 8, true
	}
	return 0, 0, false
}

// selected returns the registers of the queue queue_select names, or nil
// when there is no such queue. The caller holds t.mu.
func (t *Transport) selected() *queueRegs {
	if int(t.queueSel) >= len(t.qregs) {
		return nil
	}
	return &t.qregs[t.queueSel]
}

// addr returns the queue address field at offset field.
func (q *queueRegs) addr(field uint64) *uint64 {
	switch field {
	case regQueueDesc:
		return &q.desc
	case regQueueDriver:
		return &q.driver
	}
	return &q.device
}

// featureWord returns 32 bits of f as feature select sel picks them.
func featureWord(f uint64, sel uint32) uint64 {
	if sel >= featureWords {
		return 0
	}
	return f >> (32 * sel) & 0xFFFF_FFFF
}

// readCommon reads the common configuration register at off, n bytes
// wide; false means no register answers. The caller holds t.mu.
func (t *Transport) readCommon(off uint64, n int) (uint64, bool) {
	q := t.selected()
	if field, shift, ok := addrField(off, n); ok {
		if q == nil {
			return 0, true
		}
		return *q.addr(field) >> shift, true
	}
	if n != regWidth(off) {
		return 0, false
	}
	switch off {
	case regDeviceFeatureSelect:
		return uint64(t.devFeatSel), true
	case regDeviceFeature:
		return featureWord(t.offered, t.devFeatSel), true
	case regDriverFeatureSelect:
		return uint64(t.drvFeatSel), true
	case regDriverFeature:
		return featureWord(t.drvFeatures, t.drvFeatSel), true
	case regConfigMSIXVector:
		return uint64(t.configVector), true
	case regNumQueues:
		return uint64(len(t.qregs)), true
	case regDeviceStatus:
		return uint64(t.status), true
	case regConfigGeneration:
		return uint64(t.generation), true
	case regQueueSelect:
		return uint64(t.queueSel), true
	}
	if q == nil {
		return 0, true // queue_size 0: the queue is unavailable (§4.1.4.3)
	}
	switch off {
	case regQueueSize:
		return uint64(q.size), true
	case regQueueMSIXVector:
		return uint64(q.vector), true
	case regQueueEnable:
		return boolWord(q.enabled), true
	case regQueueNotifyOff:
		return uint64(t.queueSel), true
	}
	return 0, false
}

func boolWord(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// writeCommon writes v, n bytes wide, to the common configuration register
// at off.
func (t *Transport) writeCommon(off uint64, n int, v uint64) {
	if off == regDeviceStatus && n == 1 {
		t.writeStatus(uint8(v))
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	q := t.selected()
	if field, shift, ok := addrField(off, n); ok {
		if q != nil && t.queueWritable(q) {
			mask := ^uint64(0) >> (64 - 8*n) << shift
			p := q.addr(field)
			*p = *p&^mask | v<<shift&mask
		}
		return
	}
	if n != regWidth(off) {
		return
	}
	switch off {
	case regDeviceFeatureSelect:
		t.devFeatSel = uint32(v)
	case regDriverFeatureSelect:
		t.drvFeatSel = uint32(v)
	case regDriverFeature:
		// §3.1.1: features are fixed once FEATURES_OK is set.
		if t.drvFeatSel < featureWords && t.status&StatusFeaturesOK == 0 {
			shift := 32 * t.drvFeatSel
			t.drvFeatures = t.drvFeatures&^(0xFFFF_FFFF<<shift) | v<<shift
		}
	case regConfigMSIXVector:
		t.configVector = t.vectorOrNone(uint16(v))
	case regQueueSelect:
		t.queueSel = uint16(v)
	}
	if q == nil {
		return
	}
	switch off {
	case regQueueSize:
		if size := uint16(v); t.queueWritable(q) && validSize(size, t.queues[t.queueSel].MaxSize()) {
			q.size = size
		}
	case regQueueMSIXVector:
		q.vector = t.vectorOrNone(uint16(v))
	case regQueueEnable:
		if v == 1 {
			t.enableQueue(int(t.queueSel))
		}
	}
}

// queueWritable reports whether the driver may still change a queue's
// size and addresses: before it enables the queue and before DRIVER_OK.
func (t *Transport) queueWritable(q *queueRegs) bool {
	return !q.enabled && t.status&StatusDriverOK == 0
}

// validSize reports whether size is a power of two no larger than max
// (§2.7: "Queue Size value is always a power of 2").
func validSize(size, max uint16) bool {
	return size != 0 && size&(size-1) == 0 && size <= max
}

// vectorOrNone returns v if it names an MSI-X table entry and NoVector
// otherwise; the driver reads the register back to see whether the
// mapping took (§4.1.5.1.2).
func (t *Transport) vectorOrNone(v uint16) uint16 {
	if int(v) < t.msix.Vectors() {
		return v
	}
	return NoVector
}

// enableQueue handles a write of 1 to queue_enable: the queue is checked
// and made ready with what the driver programmed. A configuration the
// queue rejects (misaligned, outside guest memory) earns the device
// DEVICE_NEEDS_RESET. The caller holds t.mu.
func (t *Transport) enableQueue(i int) {
	q := &t.qregs[i]
	if !t.queueWritable(q) || t.status&StatusFeaturesOK == 0 || t.status&StatusDeviceNeedsReset != 0 {
		return
	}
	err := t.queues[i].Enable(t.mem, virtio.Config{
		Size:      q.size,
		DescTable: guestmem.GuestAddr(q.desc),
		AvailRing: guestmem.GuestAddr(q.driver),
		UsedRing:  guestmem.GuestAddr(q.device),
		Features:  t.drvFeatures,
	})
	if err != nil {
		t.needsReset()
		return
	}
	q.enabled = true
}
