package vmm

import (
	"encoding/binary"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/vmm-dev/vmm/kvm"
)

// firstMSIGSI is the first GSI past the in-kernel IOAPIC's pins; MSI routes
// take GSIs from here up.
const firstMSIGSI = kvm.IOAPICPins

// maxMSIRoutes bounds the routes a guest can make the VMM create (one per
// device vector it uses); KVM's own limit (KVM_MAX_IRQ_ROUTES) is 4096.
const maxMSIRoutes = 1024

// msiRouter delivers the devices' MSI-X messages through KVM's GSI routing
// table and irqfds: each (device, vector) that fires gets a GSI routed to its
// message and an eventfd bound to that GSI, so raising it is one eventfd
// write from the device goroutine, with no ioctl and no vCPU exit. The table
// is rewritten only when the guest reprograms a vector's message. Masking
// and the pending bits stay with the device's MSI-X table (devices/pci),
// which decides when a message fires.
type msiRouter struct {
	vm *kvm.VM

	mu     sync.Mutex
	routes map[msiVector]*msiRoute
	order  []*msiRoute // in GSI order, for rebuilding the table
	failed bool        // routing unavailable: deliver with KVM_SIGNAL_MSI
}

// msiVector names one MSI-X vector of one device.
type msiVector struct{ dev, vector int }

type msiRoute struct {
	gsi       uint32
	efd       int
	addr      uint64
	data      uint32
	installed bool
}

func newMSIRouter(vm *kvm.VM) *msiRouter {
	return &msiRouter{vm: vm, routes: make(map[msiVector]*msiRoute)}
}

// fire sends dev's vector with the message the guest programmed. It runs
// with the device's MSI-X lock held; it touches only the router.
func (r *msiRouter) fire(dev, vector int, addr uint64, data uint32) {
	efd, ok := r.route(msiVector{dev, vector}, addr, data)
	if !ok {
		// No route (the table is full, or this KVM refused one): inject
		// directly. A message the guest cannot accept is its to mask.
		r.vm.SignalMSI(addr, data)
		return
	}
	var one [8]byte
	binary.LittleEndian.PutUint64(one[:], 1)
	unix.Write(efd, one[:])
}

// route returns the eventfd that raises v's message, creating the route or
// moving it to a new message first.
func (r *msiRouter) route(v msiVector, addr uint64, data uint32) (int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failed {
		return -1, false
	}
	rt := r.routes[v]
	if rt != nil && rt.installed && rt.addr == addr && rt.data == data {
		return rt.efd, true
	}
	if rt == nil {
		if len(r.order) >= maxMSIRoutes {
			return -1, false
		}
		efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
		if err != nil {
			return -1, false
		}
		rt = &msiRoute{gsi: firstMSIGSI + uint32(len(r.order)), efd: efd}
		r.routes[v] = rt
		r.order = append(r.order, rt)
	}
	rt.addr, rt.data = addr, data
	if err := r.vm.SetGSIRouting(r.table()); err != nil {
		r.failed = true
		return -1, false
	}
	if !rt.installed {
		if err := r.vm.AssignIRQFD(rt.efd, rt.gsi); err != nil {
			r.failed = true
			return -1, false
		}
		rt.installed = true
	}
	return rt.efd, true
}

// table is the full routing table: KVM's default irqchip routes (setting
// a table replaces them, and the UART and INTx lines need them) and one MSI
// route per vector that has a message.
func (r *msiRouter) table() []kvm.Route {
	t := kvm.DefaultIRQChipRoutes()
	for _, rt := range r.order {
		t = append(t, kvm.Route{GSI: rt.gsi, MSI: &kvm.MSIRoute{
			AddressLo: uint32(rt.addr), AddressHi: uint32(rt.addr >> 32), Data: rt.data,
		}})
	}
	return t
}

// close releases the eventfds; the irqfds go with the VM.
func (r *msiRouter) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var first error
	for _, rt := range r.order {
		if rt.installed {
			if err := r.vm.DeassignIRQFD(rt.efd, rt.gsi); err != nil && first == nil {
				first = fmt.Errorf("msi: %w", err)
			}
		}
		unix.Close(rt.efd)
	}
	r.order, r.routes = nil, map[msiVector]*msiRoute{}
	return first
}
