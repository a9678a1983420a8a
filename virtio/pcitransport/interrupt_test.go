package pcitransport_test

import (
	"errors"
	"testing"

	"github.com/vmm-dev/vmm/devices/pci"
	"github.com/vmm-dev/vmm/virtio"
	"github.com/vmm-dev/vmm/virtio/pcitransport"
)

// liveWithMSIX brings the device up with MSI-X on: config changes on
// vector 0, queue q on vector q+1.
func liveWithMSIX(t *testing.T) *rig {
	r := newRig(t)
	r.negotiate(virtio.FeatureVersion1)
	r.enableMSIX(3)
	r.write(cConfigVec, 2, 0)
	for q, c := range []virtio.Config{r.drv.Config(0), q1Config()} {
		r.setQueue(uint16(q), c)
		r.write(cQueueVec, 2, uint64(q+1))
	}
	r.addStatus(pcitransport.StatusDriverOK)
	return r
}

// complete offers one chain on queue 0 and has the device process it.
func (r *rig) complete() {
	r.t.Helper()
	r.drv.AddChain([][]byte{{1}}, nil)
	if err := r.tr.ProcessQueue(0); err != nil {
		r.t.Fatal(err)
	}
}

func TestMSIX_VectorMaskedThenUnmasked(t *testing.T) {
	r := liveWithMSIX(t)
	_, msixCap := r.caps()
	table := uint64(r.cfg32(msixCap+pci.MSIXOffTable) &^ pci.MSIXBIRMask)
	pba := uint64(r.cfg32(msixCap+pci.MSIXOffPBA) &^ pci.MSIXBIRMask)
	ctl := table + 1*pci.MSIXEntrySize + pci.MSIXOffVectorCtl

	r.write(ctl, 4, pci.MSIXVectorMasked)
	r.complete()
	if len(r.msis) != 0 || r.read(pba, 8) != 1<<1 {
		t.Fatalf("masked vector: MSIs %+v, PBA %#x; want none and bit 1", r.msis, r.read(pba, 8))
	}
	r.write(ctl, 4, 0)
	if len(r.msis) != 1 || r.msis[0].vector != 1 || r.read(pba, 8) != 0 {
		t.Errorf("after unmask: MSIs %+v, PBA %#x; want vector 1 and a clear PBA", r.msis, r.read(pba, 8))
	}
	if len(r.intx) != 0 || r.read(0x1000, 1) != 0 {
		t.Error("INTx or ISR used while MSI-X is enabled")
	}
}

func TestMSIX_FunctionMask(t *testing.T) {
	r := liveWithMSIX(t)
	_, msixCap := r.caps()
	r.cfgWrite(msixCap+pci.MSIXOffControl, 2, pci.MSIXCtlEnable|pci.MSIXCtlFuncMask)
	r.complete()
	if len(r.msis) != 0 {
		t.Fatalf("MSI %+v while the function is masked", r.msis)
	}
	r.cfgWrite(msixCap+pci.MSIXOffControl, 2, pci.MSIXCtlEnable)
	if len(r.msis) != 1 || r.msis[0] != (msi{1, 0xFEE0_1000, 0x41}) {
		t.Errorf("MSIs %+v after unmasking the function, want vector 1", r.msis)
	}
}

func TestMSIX_NoVectorAndOutOfRange(t *testing.T) {
	r := liveWithMSIX(t)
	r.write(cQueueSel, 2, 0)
	r.write(cQueueVec, 2, 3) // the table has vectors 0-2
	if v := r.read(cQueueVec, 2); v != pcitransport.NoVector {
		t.Fatalf("queue_msix_vector reads %#x after writing 3, want NO_VECTOR", v)
	}
	r.complete()
	if len(r.msis) != 0 || len(r.intx) != 0 {
		t.Errorf("interrupt for a queue with NO_VECTOR: MSIs %+v, INTx %v", r.msis, r.intx)
	}
}

func TestINTx_ISRReadToClear(t *testing.T) {
	r := newRig(t)
	r.bringUp(virtio.FeatureVersion1)
	r.complete()
	if len(r.intx) != 1 || !r.intx[0] {
		t.Fatalf("INTx levels %v, want asserted", r.intx)
	}
	if r.cfg16(pci.RegStatus)&pci.StatusINTx == 0 {
		t.Error("STATUS Interrupt Status clear while INTA# is asserted")
	}
	if got := r.read(0x1000, 4); got != 0 {
		t.Errorf("4-byte ISR read = %#x, want 0 (wrong width)", got)
	}
	if got := r.read(0x1000, 1); got != pcitransport.ISRQueue {
		t.Errorf("ISR = %#x, want the queue bit", got)
	}
	if got := r.read(0x1000, 1); got != 0 || len(r.intx) != 2 || r.intx[1] {
		t.Errorf("second ISR read %#x, INTx levels %v; want 0 and deasserted", got, r.intx)
	}
	if r.cfg16(pci.RegStatus)&pci.StatusINTx != 0 {
		t.Error("STATUS Interrupt Status still set after the ISR read")
	}
	r.tr.ConfigChanged()
	if got := r.read(0x1000, 1); got != pcitransport.ISRConfig {
		t.Errorf("ISR = %#x after a config change, want the config bit", got)
	}
}

func TestINTx_DisabledByCommand(t *testing.T) {
	r := newRig(t)
	r.cfgWrite(pci.RegCommand, 2, pci.CmdMemSpace|pci.CmdINTxDisable)
	r.bringUp(virtio.FeatureVersion1)
	r.complete()
	if r.cfg16(pci.RegStatus)&pci.StatusINTx == 0 {
		t.Error("STATUS Interrupt Status clear: it reports a pending interrupt even with Interrupt Disable")
	}
	if len(r.intx) != 0 || r.read(0x1000, 1) != pcitransport.ISRQueue {
		t.Errorf("INTx levels %v with Interrupt Disable; want none, with the ISR bit still set", r.intx)
	}
}

func TestNeedsReset_HostileQueueAddress(t *testing.T) {
	cases := []struct {
		name string
		desc uint64
	}{
		{"outside memory", memSize - 16},
		{"misaligned", q1Base + 8},
		{"wrapping", ^uint64(0) &^ 15},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := liveWithMSIX(t)
			r.setStatus(0)
			r.negotiate(virtio.FeatureVersion1)
			r.write(cConfigVec, 2, 0)
			r.write(cQueueSel, 2, 0)
			r.write(cQueueDesc, 8, c.desc)
			r.write(cQueueDriver, 8, q1Driver)
			r.write(cQueueDevice, 8, q1Device)
			r.write(cQueueEnable, 2, 1)
			if r.read(cQueueEnable, 2) != 0 || r.status()&pcitransport.StatusDeviceNeedsReset == 0 {
				t.Fatalf("queue_enable %d, status %#x: want refused with DEVICE_NEEDS_RESET", r.read(cQueueEnable, 2), r.status())
			}
			if len(r.msis) != 1 || r.msis[0].vector != 0 {
				t.Errorf("MSIs %+v, want one config change on vector 0", r.msis)
			}
			r.addStatus(pcitransport.StatusDriverOK)
			if len(r.dev.activations) != 1 {
				t.Errorf("DRIVER_OK activated a device that needs a reset")
			}
			r.setStatus(0)
			if r.status() != 0 {
				t.Errorf("status %#x after reset", r.status())
			}
		})
	}
}

func TestNeedsReset_BrokenChain(t *testing.T) {
	r := liveWithMSIX(t)
	r.drv.AddLoop(2)
	err := r.tr.ProcessQueue(0)
	if !errors.Is(err, virtio.ErrNeedsReset) || r.status()&pcitransport.StatusDeviceNeedsReset == 0 {
		t.Fatalf("ProcessQueue = %v, status %#x; want ErrNeedsReset and DEVICE_NEEDS_RESET", err, r.status())
	}
	if len(r.msis) != 1 || r.msis[0].vector != 0 {
		t.Errorf("MSIs %+v, want one config change on vector 0", r.msis)
	}
	r.write(r.tr.NotifyAddr(0), 2, 0)
	if len(r.notified) != 0 {
		t.Errorf("notify reached OnNotify while the device needs a reset")
	}
	if r.tr.HandleNotifyError(errors.New("host I/O error")) {
		t.Error("HandleNotifyError took a host error for the driver's")
	}
}

func TestNeedsReset_ActivateFails(t *testing.T) {
	r := newRig(t)
	r.dev.activateErr = errors.New("backend gone")
	r.bringUp(virtio.FeatureVersion1)
	if r.status()&pcitransport.StatusDeviceNeedsReset == 0 {
		t.Errorf("status %#x after a failed Activate, want DEVICE_NEEDS_RESET", r.status())
	}
	if err := r.tr.ProcessQueue(0); err != nil || len(r.dev.notifies) != 0 {
		t.Errorf("ProcessQueue on a device that failed to start: %v, %d notifies", err, len(r.dev.notifies))
	}
}

// TestConcurrent_ResetWhileProcessing runs the device goroutine's calls
// against a vCPU that resets and restarts the device, for the race
// detector and to catch a lock-order deadlock.
func TestConcurrent_ResetWhileProcessing(t *testing.T) {
	r := newRig(t)
	r.bringUp(virtio.FeatureVersion1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 300 {
			_ = r.tr.ProcessQueue(0)
			r.tr.ConfigChanged()
			r.tr.HandleNotifyError(virtio.ErrNeedsReset)
		}
	}()
	for range 30 {
		r.setStatus(0)
		r.bringUp(virtio.FeatureVersion1)
		r.read(0x1000, 1)
	}
	<-done
}

func TestInterrupt_ConfigChangedFromDevice(t *testing.T) {
	r := liveWithMSIX(t)
	irq, ok := r.dev.activations[0].irq.(interface{ ConfigChanged() })
	if !ok {
		t.Fatal("the Interrupt given to Activate has no ConfigChanged")
	}
	irq.ConfigChanged()
	if len(r.msis) != 1 || r.msis[0].vector != 0 || r.read(cGeneration, 1) != 1 {
		t.Errorf("MSIs %+v, generation %d; want vector 0 and 1", r.msis, r.read(cGeneration, 1))
	}
	if err := r.dev.activations[0].irq.Signal(2); !errors.Is(err, pcitransport.ErrNoSuchQueue) {
		t.Errorf("Signal(2) = %v, want ErrNoSuchQueue", err)
	}
}
