package pcitransport_test

import (
	"testing"

	"github.com/vmm-dev/vmm/devices/pci"
	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/virtio"
	"github.com/vmm-dev/vmm/virtio/pcitransport"
)

const (
	capCommon = 1
	capNotify = 2
	capISR    = 3
	capDevice = 4
	capPCICfg = 5
)

func TestNew_Identity(t *testing.T) {
	r := newRig(t)
	checks := []struct {
		name  string
		off   uint64
		width int
		want  uint64
	}{
		{"vendor", pci.RegVendorID, 2, 0x1AF4},
		{"device", pci.RegDeviceID, 2, 0x1040 + virtio.IDBlock},
		{"revision", pci.RegRevisionID, 1, 1},
		{"class", pci.RegRevisionID, 4, 0x018000<<8 | 1},
		{"subsystem vendor", pci.RegSubsystemVendorID, 2, 0x1AF4},
		{"subsystem", pci.RegSubsystemID, 2, 0x1042},
		{"interrupt pin", pci.RegInterruptPin, 1, 1},
	}
	for _, c := range checks {
		if got := r.cfgRead(c.off, c.width); got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, got, c.want)
		}
	}
	bar, m := r.tr.Config().BARMapping(0)
	if bar.Kind != pci.BARMem32 || bar.Size != r.tr.BARSize() || m.Addr != 0xC000_0000 {
		t.Errorf("BAR0 = %+v at %+v, want a %#x-byte 32-bit BAR at 0xC0000000", bar, m, r.tr.BARSize())
	}
}

// sizesDev is a fakeDev with other queue maximums.
type sizesDev struct {
	fakeDev
	sizes []uint16
}

func (d *sizesDev) QueueMaxSizes() []uint16 { return d.sizes }

func TestNew_RejectsQueues(t *testing.T) {
	cases := []struct {
		name  string
		sizes []uint16
	}{
		{"maximum not a power of two", []uint16{100}},
		{"maximum zero", []uint16{0}},
		{"more queues than the notify page holds", make([]uint16, pcitransport.MaxQueues+1)},
	}
	for _, c := range cases {
		_, err := pcitransport.New(&sizesDev{sizes: c.sizes}, guestmem.NewTest(memSize), pcitransport.Options{})
		if err == nil {
			t.Errorf("%s: New succeeded", c.name)
		}
	}
}

// TestBringUp_LinuxModern drives the device as Linux's virtio_pci_modern
// and virtio core do, then moves a buffer through queue 0.
func TestBringUp_LinuxModern(t *testing.T) {
	r := newRig(t)
	caps, msixCap := r.caps()
	for _, typ := range []uint8{capCommon, capNotify, capISR, capDevice, capPCICfg} {
		c, ok := caps[typ]
		if !ok {
			t.Fatalf("no capability of cfg_type %d", typ)
		}
		if typ != capPCICfg && (c.bar != 0 || uint64(c.offset)+uint64(c.length) > r.tr.BARSize()) {
			t.Errorf("cfg_type %d: bar %d [%#x, +%#x) outside BAR0", typ, c.bar, c.offset, c.length)
		}
	}
	if caps[capCommon].length < 0x38 || caps[capNotify].notifyMultiplier != 4 {
		t.Errorf("common length %#x, notify multiplier %d", caps[capCommon].length, caps[capNotify].notifyMultiplier)
	}
	if n := r.cfg16(msixCap+pci.MSIXOffControl)&pci.MSIXCtlSizeMask + 1; n != 3 {
		t.Errorf("MSI-X table of %d vectors, want 3", n)
	}

	const want = virtio.FeatureVersion1 | virtio.FeatureEventIdx | featA
	offered := r.deviceFeatures()
	if offered&want != want || offered&virtio.FeatureRingPacked != 0 {
		t.Fatalf("device features %#x: want %#x offered and RING_PACKED not", offered, want)
	}
	if s := r.negotiate(want); s&pcitransport.StatusFeaturesOK == 0 {
		t.Fatalf("FEATURES_OK refused: status %#x", s)
	}
	r.enableMSIX(3)
	r.write(cConfigVec, 2, 0)
	if v := r.read(cConfigVec, 2); v != 0 {
		t.Fatalf("config_msix_vector reads %#x after writing 0", v)
	}
	if n := r.read(cNumQueues, 2); n != 2 {
		t.Fatalf("num_queues = %d, want 2", n)
	}
	notifyOff := make([]uint64, 2)
	for q, cfg := range []virtio.Config{r.drv.Config(0), q1Config()} {
		r.write(cQueueSel, 2, uint64(q))
		if max := r.read(cQueueSize, 2); max != uint64([]uint16{q0Max, q1Max}[q]) {
			t.Errorf("queue %d: queue_size %d", q, max)
		}
		notifyOff[q] = r.read(cNotifyOff, 2)
		r.setQueue(uint16(q), cfg)
		if r.read(cQueueEnable, 2) != 1 {
			t.Fatalf("queue %d: queue_enable does not read 1", q)
		}
		r.write(cQueueVec, 2, uint64(q+1))
		if v := r.read(cQueueVec, 2); v != uint64(q+1) {
			t.Fatalf("queue %d: queue_msix_vector reads %#x", q, v)
		}
	}
	r.addStatus(pcitransport.StatusDriverOK)

	if len(r.dev.activations) != 1 {
		t.Fatalf("%d activations, want 1", len(r.dev.activations))
	}
	a := r.dev.activations[0]
	if a.features != want || len(a.queues) != 2 || a.queues[0] == nil || a.queues[1] == nil {
		t.Fatalf("Activate(features %#x, queues %v), want %#x and two queues", a.features, a.queues, want)
	}
	if got, wantCfg := a.queues[0].Config(), r.drv.Config(virtio.FeatureEventIdx); got != wantCfg {
		t.Errorf("queue 0 config %+v, want %+v", got, wantCfg)
	}

	head := r.drv.AddChain([][]byte{{1, 2, 3}}, []int{4})
	addr := uint64(caps[capNotify].offset) + notifyOff[0]*uint64(caps[capNotify].notifyMultiplier)
	if addr != r.tr.NotifyAddr(0) {
		t.Errorf("queue 0 notifies at %#x, NotifyAddr says %#x", addr, r.tr.NotifyAddr(0))
	}
	r.write(addr, 2, 0)
	if len(r.notified) != 1 || r.notified[0] != 0 {
		t.Fatalf("OnNotify calls %v, want [0]", r.notified)
	}
	if err := r.tr.ProcessQueue(0); err != nil {
		t.Fatal(err)
	}
	if used := r.drv.Used(); len(used) != 1 || used[0].ID != uint32(head) {
		t.Errorf("used %v, want head %d", used, head)
	}
	if len(r.msis) != 1 || r.msis[0] != (msi{1, 0xFEE0_1000, 0x41}) {
		t.Errorf("MSIs %+v, want vector 1's message", r.msis)
	}
}

func TestFeaturesOK_Refused(t *testing.T) {
	cases := []struct {
		name     string
		features uint64
	}{
		{"without VERSION_1", featA | featB},
		{"with a bit not offered", virtio.FeatureVersion1 | 1<<7},
		{"with RING_PACKED, which the transport does not offer", virtio.FeatureVersion1 | virtio.FeatureRingPacked},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t)
			if s := r.negotiate(c.features); s&pcitransport.StatusFeaturesOK != 0 {
				t.Fatalf("FEATURES_OK accepted: status %#x", s)
			}
			r.setQueue(0, r.drv.Config(0))
			r.addStatus(pcitransport.StatusDriverOK)
			if s := r.status(); s&pcitransport.StatusDriverOK != 0 || len(r.dev.activations) != 0 {
				t.Errorf("status %#x and %d activations without FEATURES_OK", s, len(r.dev.activations))
			}
		})
	}
}

func TestDriverFeatures_FixedAfterFeaturesOK(t *testing.T) {
	r := newRig(t)
	r.negotiate(virtio.FeatureVersion1 | featA)
	r.write(cDrvFeatSel, 4, 0)
	r.write(cDrvFeat, 4, featB)
	if got := r.read(cDrvFeat, 4); got != featA {
		t.Errorf("driver_feature low word %#x after FEATURES_OK, want %#x", got, featA)
	}
}

func TestQueueSize_Rules(t *testing.T) {
	r := newRig(t)
	r.negotiate(virtio.FeatureVersion1)
	r.write(cQueueSel, 2, 0)
	for _, v := range []uint64{100, 512, 0} {
		r.write(cQueueSize, 2, v)
		if got := r.read(cQueueSize, 2); got != q0Max {
			t.Errorf("queue_size %d after writing %d, want %d kept", got, v, q0Max)
		}
	}
	r.setQueue(0, r.drv.Config(0))
	r.write(cQueueSize, 2, 32)
	if got := r.read(cQueueSize, 2); got != q0Size {
		t.Errorf("queue_size %d after enable and writing 32, want %d", got, q0Size)
	}
	r.write(cQueueSel, 2, 2)
	r.write(cQueueSize, 2, 8)
	for _, off := range []uint64{cQueueSize, cQueueEnable, cNotifyOff} {
		if got := r.read(off, 2); got != 0 {
			t.Errorf("register %#x of absent queue 2 reads %d", off, got)
		}
	}
}

func TestQueueEnable_IgnoredBeforeFeaturesOK(t *testing.T) {
	r := newRig(t)
	r.setStatus(pcitransport.StatusAcknowledge | pcitransport.StatusDriver)
	r.setQueue(0, r.drv.Config(0))
	if r.read(cQueueEnable, 2) != 0 {
		t.Error("queue enabled before FEATURES_OK")
	}
}

func TestReset_ClearsEverything(t *testing.T) {
	r := newRig(t)
	r.bringUp(virtio.FeatureVersion1)
	queues := r.dev.activations[0].queues
	r.write(cQueueSel, 2, 1)
	r.setStatus(0)
	if r.dev.resets == 0 || r.status() != 0 || queues[0].Ready() || queues[1].Ready() {
		t.Fatalf("after reset: %d resets, status %#x, queues ready %v %v",
			r.dev.resets, r.status(), queues[0].Ready(), queues[1].Ready())
	}
	regs := []struct {
		off   uint64
		width int
		want  uint64
	}{
		{cQueueSel, 2, 0}, {cQueueSize, 2, q0Max}, {cQueueVec, 2, pcitransport.NoVector},
		{cQueueEnable, 2, 0}, {cQueueDesc, 8, 0}, {cQueueDriver, 8, 0}, {cQueueDevice, 8, 0},
		{cConfigVec, 2, pcitransport.NoVector}, {cDrvFeat, 4, 0},
	}
	for _, g := range regs {
		if got := r.read(g.off, g.width); got != g.want {
			t.Errorf("register %#x = %#x after reset, want %#x", g.off, got, g.want)
		}
	}
	r.bringUp(virtio.FeatureVersion1)
	if len(r.dev.activations) != 2 {
		t.Errorf("%d activations after a second bring-up, want 2", len(r.dev.activations))
	}
}

func TestNotify_OnlyWhenLive(t *testing.T) {
	r := newRig(t)
	r.negotiate(virtio.FeatureVersion1)
	r.setQueue(0, r.drv.Config(0))
	r.write(r.tr.NotifyAddr(0), 2, 0)
	if len(r.notified) != 0 {
		t.Fatalf("notify before DRIVER_OK reached OnNotify: %v", r.notified)
	}
	r.addStatus(pcitransport.StatusDriverOK)
	r.write(r.tr.NotifyAddr(1), 2, 1)   // queue 1 not enabled
	r.write(r.tr.NotifyAddr(0), 4, 0)   // wrong width
	r.write(r.tr.NotifyAddr(0)+2, 2, 0) // not a register
	r.write(r.tr.NotifyAddr(0), 2, 0)
	if len(r.notified) != 1 || r.notified[0] != 0 {
		t.Errorf("OnNotify calls %v, want [0]", r.notified)
	}
}

func TestAccess_WrongWidthIgnored(t *testing.T) {
	r := newRig(t)
	r.bringUp(virtio.FeatureVersion1)
	reads := []struct {
		off   uint64
		width int
	}{
		{cStatus, 2}, {cNumQueues, 4}, {cNumQueues, 1}, {cDevFeat, 2}, {cQueueDesc + 2, 4},
		{cQueueSize, 8}, {0x1000, 4}, {0x37, 2}, {0x2FFF, 2}, {r.tr.BARSize(), 4}, {^uint64(0), 8},
	}
	for _, a := range reads {
		if got := r.read(a.off, a.width); got != 0 {
			t.Errorf("read of %d bytes at %#x = %#x, want 0", a.width, a.off, got)
		}
	}
	r.write(cQueueSel, 2, 0)
	r.write(cQueueSel, 1, 1)
	r.write(cStatus, 2, 0)
	if r.read(cQueueSel, 2) != 0 || r.status() == 0 {
		t.Error("a write of the wrong width took effect")
	}
}

func TestDeviceConfig_PassesThrough(t *testing.T) {
	r := newRig(t)
	caps, _ := r.caps()
	base := uint64(caps[capDevice].offset)
	r.write(base+4, 4, 0xAABBCCDD)
	if got := r.read(base, 8); got != 0xAABBCCDD<<32 {
		t.Errorf("device config reads %#x", got)
	}
	gen := r.read(cGeneration, 1)
	r.tr.ConfigChanged()
	if r.read(cGeneration, 1) != gen+1 {
		t.Error("config_generation did not move")
	}
}

func TestPCICfgCap_ReachesBAR0(t *testing.T) {
	r := newRig(t)
	caps, _ := r.caps()
	at := caps[capPCICfg].at
	window := func(off, length uint64) {
		r.cfgWrite(at+4, 1, 0) // bar
		r.cfgWrite(at+8, 4, off)
		r.cfgWrite(at+12, 4, length)
	}
	window(cNumQueues, 2)
	if got := r.cfgRead(at+16, 2); got != 2 {
		t.Errorf("num_queues through pci_cfg_data = %d, want 2", got)
	}
	window(cStatus, 1)
	r.cfgWrite(at+16, 1, pcitransport.StatusAcknowledge)
	if r.status() != pcitransport.StatusAcknowledge {
		t.Errorf("status %#x after a write through pci_cfg_data", r.status())
	}
	if got := r.cfgRead(at+16, 4); got != 0 {
		t.Errorf("a 4-byte access to a 1-byte window reads %#x, want 0", got)
	}
}
