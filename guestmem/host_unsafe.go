package guestmem

import "unsafe"

// HostRegion is what KVM_SET_USER_MEMORY_REGION needs for one region.
type HostRegion struct {
	Start    GuestAddr
	Size     uint64
	HostAddr uintptr
}

// HostRegions returns each region's host virtual address, for registering
// the memory with the hypervisor. Nothing else should need it.
func (m *Memory) HostRegions() []HostRegion {
	out := make([]HostRegion, len(m.regions))
	for i, r := range m.regions {
		out[i] = HostRegion{Start: r.Start, Size: r.Size, HostAddr: uintptr(unsafe.Pointer(&r.host[0]))}
	}
	return out
}
