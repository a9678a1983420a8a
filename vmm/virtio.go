package vmm

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/vmm-dev/vmm/devices/pci"
	"github.com/vmm-dev/vmm/kvm"
	"github.com/vmm-dev/vmm/virtio"
	"github.com/vmm-dev/vmm/virtio/blk"
	"github.com/vmm-dev/vmm/virtio/console"
	vnet "github.com/vmm-dev/vmm/virtio/net"
	"github.com/vmm-dev/vmm/virtio/pcitransport"
	"github.com/vmm-dev/vmm/virtio/rng"
)

// pciBARWindow is where BARs are placed: the 32-bit MMIO hole up to the
// IOAPIC, the same window the DSDT's host bridge describes.
const (
	pciBARWindowStart = uint64(pciMMIOWindowLo)
	pciBARWindowEnd   = 0xFEC0_0000
)

// virtioDevice is one virtio device on the PCI bus: its transport, the
// eventfds KVM signals when the guest notifies a queue, and the goroutines
// that process the queues off the vCPU threads.
type virtioDevice struct {
	name      string
	dev       virtio.Device
	transport *pcitransport.Transport
	kicks     []*queueKick // one per queue

	mu   sync.Mutex // guards bar: the BAR0 mapping currently installed
	bar  pci.BARMapping
	size uint64

	// intx drives the function's INTA#; set once the slot is known,
	// before the guest runs.
	intx func(level bool)
}

// addVirtio puts dev on the PCI bus with its BAR0 placed by the VMM.
// Queue notifications arrive through ioeventfds (no vCPU exit) and are
// processed on the device's goroutines; interrupts are MSI-X messages sent
// through irqfds (msiRouter), or INTA# while the guest leaves MSI-X off.
func (m *Machine) addVirtio(name string, dev virtio.Device) (*virtioDevice, error) {
	// The BAR's size depends only on the device's queues; ask a scratch
	// transport, then build the real one at an address of that size.
	probe, err := pcitransport.New(dev, m.mem, pcitransport.Options{})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	addr, err := m.bars.Alloc(probe.BARSize())
	if err != nil {
		return nil, fmt.Errorf("%s: place BAR0: %w", name, err)
	}
	d := &virtioDevice{name: name, dev: dev, size: probe.BARSize()}
	index := len(m.virtio)
	t, err := pcitransport.New(dev, m.mem, pcitransport.Options{
		BAR0Addr: addr,
		OnNotify: d.kick,
		OnMSI: func(vector int, addr uint64, data uint32) {
			m.msi.fire(index, vector, addr, data)
		},
		OnINTx: func(level bool) {
			if d.intx != nil {
				d.intx(level)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	d.transport = t
	for q := 0; q < t.NumQueues(); q++ {
		k, err := newQueueKick()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		m.undo.add(k.close)
		d.kicks = append(d.kicks, k)
	}
	t.Config().OnBARChange(func(c pci.BARChange) {
		if c.Index == 0 {
			m.remapBAR0(d, c.New)
		}
	})
	slot, err := m.pci.Add(t)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	d.intx = m.intx.pin(slot)
	// As firmware does: the Interrupt Line names INTA#'s GSI.
	t.Config().WriteConfig(pci.RegInterruptLine, []byte{byte(intxGSI(slot, 0))})
	m.virtio = append(m.virtio, d)
	return d, nil
}

// remapBAR0 moves a device's registers and queue ioeventfds to where the
// guest's BAR0 now decodes (or takes them away).
func (m *Machine) remapBAR0(d *virtioDevice, now pci.BARMapping) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.bar.Decoding {
		m.exits.mmio.Remove(d.bar.Addr)
		for q, k := range d.kicks {
			m.vm.DeassignIOEventFD(k.fd, kvm.IOEventFDConfig{Addr: d.bar.Addr + d.transport.NotifyAddr(q)})
		}
	}
	d.bar = pci.BARMapping{}
	if !now.Decoding {
		return
	}
	if err := m.exits.mmio.Insert(now.Addr, d.size, d.name, d.transport.BAR0()); err != nil {
		return // an overlapping BAR stays unmapped, as on a real bus
	}
	for q, k := range d.kicks {
		// Without the ioeventfd the write still reaches the transport,
		// which calls kick: slower, never lost.
		m.vm.AssignIOEventFD(k.fd, kvm.IOEventFDConfig{Addr: now.Addr + d.transport.NotifyAddr(q)})
	}
	d.bar = now
}

// kick signals queue q's eventfd from the VMM side, for notifications that
// reached the transport through a vCPU exit.
func (d *virtioDevice) kick(q int) {
	if q < 0 || q >= len(d.kicks) {
		return
	}
	d.kicks[q].signal()
}

// serve processes queue q each time its eventfd fires, until the Machine
// stops its devices, and once more then.
func (m *Machine) serve(d *virtioDevice, q int) {
	defer m.virtioWG.Done()
	for {
		if err := d.kicks[q].wait(); err != nil {
			return
		}
		if m.virtioStop.Load() {
			// One last pass: what the guest queued before it powered off
			// (a workload's last output, its exit status) is still
			// delivered. The vCPUs have stopped, so nothing new comes.
			d.transport.ProcessQueue(q)
			return
		}
		if err := d.transport.ProcessQueue(q); err != nil && !errors.Is(err, virtio.ErrNeedsReset) {
			fmt.Fprintf(m.cfg.Log, "vmm: %s queue %d: %v\n", d.name, q, err)
		}
	}
}

// startVirtio starts every device's queue goroutines.
func (m *Machine) startVirtio() {
	for _, d := range m.virtio {
		for q := range d.kicks {
			m.virtioWG.Add(1)
			go m.serve(d, q)
		}
	}
}

// stopVirtio ends the queue goroutines and waits for them, then resets
// every device, which waits for the work a device runs on its own
// goroutines (disk requests in flight, the network receiver), so nothing
// touches guest memory or a backend after they are released. The vCPUs
// have stopped, so no driver write can reach a transport meanwhile.
func (m *Machine) stopVirtio() {
	m.virtioStop.Store(true)
	for _, d := range m.virtio {
		for q := range d.kicks {
			d.kick(q)
		}
	}
	m.virtioWG.Wait()
	for _, d := range m.virtio {
		d.dev.Reset()
	}
}

// addConfiguredVirtio creates the devices the Config asks for: disks in
// order (the first is /dev/vda), network devices in order (the first is
// eth0), then the entropy device.
func (m *Machine) addConfiguredVirtio() error {
	for i, disk := range m.cfg.Disks {
		f, err := blk.NewFileBackend(disk.Path, disk.ReadOnly)
		if err != nil {
			return &FileError{Role: "disk", Path: disk.Path, Err: err}
		}
		m.undo.add(f.Close)
		dev, err := blk.New(f, blk.Options{ReadOnly: disk.ReadOnly})
		if err != nil {
			return fmt.Errorf("disk %s: %w", disk.Path, err)
		}
		if _, err := m.addVirtio(fmt.Sprintf("virtio-blk%d", i), dev); err != nil {
			return err
		}
	}
	for i, nic := range m.cfg.NICs {
		if err := m.addNIC(i, nic); err != nil {
			return err
		}
	}
	if len(m.cfg.Ports) > 0 {
		if err := m.addConsole(); err != nil {
			return err
		}
	}
	if m.cfg.RNG {
		if _, err := m.addVirtio("virtio-rng", rng.New(rng.Getrandom{})); err != nil {
			return err
		}
	}
	return nil
}

// addNIC attaches a virtio-net device to the TAP or the switch socket the
// NIC names.
func (m *Machine) addNIC(i int, nic NIC) error {
	mac, err := nic.mac(rng.Getrandom{})
	if err != nil {
		return fmt.Errorf("network device %d: %w", i, err)
	}
	var backend vnet.Backend
	label := nic.TAP
	if nic.Socket != "" {
		label = "switch " + nic.Socket
		backend, err = vnet.OpenSocket(nic.Socket, mac[:])
	} else {
		backend, err = vnet.OpenTAP(nic.TAP)
	}
	if err != nil {
		return fmt.Errorf("network device %d: %w", i, err)
	}
	name := fmt.Sprintf("virtio-net%d", i)
	sink := &errorSink{log: m.cfg.Log, name: name + " (" + label + ")"}
	dev, err := vnet.New(backend, vnet.Options{MAC: mac, OnError: sink.report})
	if err != nil {
		backend.Close()
		return fmt.Errorf("network device %d: %w", i, err)
	}
	m.undo.add(dev.Close)
	sink.dev, err = m.addVirtio(name, dev)
	return err
}

// errorSink hears what a device's own goroutines (a receiver) run into. A
// ring the guest broke marks the device NEEDS_RESET through its transport
// at once, rather than at the driver's next notification; anything else is
// logged. dev is set by addVirtio, before the guest runs.
type errorSink struct {
	log  io.Writer
	name string
	dev  *virtioDevice
}

func (s *errorSink) report(err error) {
	if s.dev != nil && s.dev.transport.HandleNotifyError(err) {
		return
	}
	fmt.Fprintf(s.log, "vmm: %s: %v\n", s.name, err)
}

// addConsole puts the Config's ports on one multiport virtio-console.
func (m *Machine) addConsole() error {
	ports := make([]console.Port, len(m.cfg.Ports))
	for i, p := range m.cfg.Ports {
		ports[i] = console.Port{Name: p.Name, In: p.In, Out: p.Out}
	}
	sink := &errorSink{log: m.cfg.Log, name: "virtio-console"}
	dev, err := console.New(ports, console.Options{OnError: sink.report})
	if err != nil {
		return fmt.Errorf("console ports: %w", err)
	}
	m.undo.add(dev.Close)
	sink.dev, err = m.addVirtio("virtio-console", dev)
	return err
}
