package vmm

import (
	"fmt"
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmm-dev/vmm/guestmem"
	"github.com/vmm-dev/vmm/internal/startuptrace"
	"github.com/vmm-dev/vmm/kvm"
	"github.com/vmm-dev/vmm/vmm/emulate"
)

// This file holds what runs on, or reaches into, the vCPU threads: the run
// loop, kicks, register samples and crash reports.

// Sample interrupts the boot vCPU and returns its registers: a profiler's
// view of where a slow or stuck guest spends its time. It returns false if
// the run ended or the vCPU did not answer within a second.
func (m *Machine) Sample() (kvm.Regs, bool) {
	if m.stopping.Load() || !m.sampleReq.CompareAndSwap(false, true) {
		return kvm.Regs{}, false
	}
	m.kick(0)
	select {
	case r := <-m.samples:
		return r, true
	case <-time.After(time.Second):
		m.sampleReq.Store(false)
		return kvm.Regs{}, false
	}
}

// answerSample serves a pending Sample on the boot vCPU's thread.
func (m *Machine) answerSample(c *kvm.VCPU) {
	if !m.sampleReq.Load() || m.stopping.Load() {
		return
	}
	c.SetImmediateExit(false)
	r, err := c.GetRegs()
	m.sampleReq.Store(false)
	if err == nil {
		select {
		case m.samples <- r:
		default:
		}
	}
}

// kick makes vCPU i leave KVM_RUN: immediate_exit covers a vCPU about to
// enter the guest, the signal one already inside it.
func (m *Machine) kick(i int) {
	m.kickMu.Lock()
	defer m.kickMu.Unlock()
	if m.closed {
		return
	}
	m.vcpus[i].SetImmediateExit(true)
	if tid := m.tids[i].Load(); tid != 0 {
		// SIGURG: the Go runtime already handles it (goroutine
		// preemption), so it only interrupts the ioctl.
		unix.Tgkill(unix.Getpid(), int(tid), unix.SIGURG)
	}
}

// kickAll makes every vCPU leave KVM_RUN.
func (m *Machine) kickAll() {
	for i := range m.vcpus {
		m.kick(i)
	}
}

func (m *Machine) runVCPU(i int) {
	// The thread stays locked until the goroutine ends, so the runtime
	// retires it rather than reuse a thread KVM has state on.
	runtime.LockOSThread()
	c := m.vcpus[i]
	m.tids[i].Store(int32(unix.Gettid()))
	defer m.tids[i].Store(0) // the thread dies with the goroutine: no more kicks
	var tally exitTally
	defer m.exits.addTally(&tally)
	y := yielder{last: time.Now()}
	confined := false
	for !m.stopping.Load() {
		if i == 0 {
			m.firstRun.Do(func() {
				m.mu.Lock()
				m.firstRunTime = time.Now()
				startuptrace.Mark("first-kvm-run")
				m.mu.Unlock()
			})
		}
		y.maybeYield()
		exit, err := c.Run()
		if !confined {
			// Run started the guest before the filter was in; nothing it
			// did is acted on until it is (see Run).
			<-m.confined
			confined = true
			if m.stopping.Load() {
				return
			}
		}
		if err != nil {
			m.Stop(ReasonVMMError, err.Error())
			return
		}
		tally.add(exit.Reason)
		if exit.Reason == kvm.KVM_EXIT_INTR && i == 0 {
			m.answerSample(c)
		}
		v := m.exits.handle(&exit)
		if !v.stop {
			continue
		}
		detail := v.detail
		if exit.Reason == kvm.KVM_EXIT_INTERNAL_ERROR && exit.Internal.Suberror == kvm.KVM_INTERNAL_ERROR_EMULATION && m.cfg.Profile.Fallback {
			handled, err := m.fallback(c)
			if handled {
				continue
			}
			if err != nil {
				detail = joinDetail(detail, "fallback emulator: "+err.Error())
			}
		}
		if v.reason != ReasonReset && v.reason != ReasonPowerOff {
			detail = joinDetail(detail, m.crashReport(c, &exit))
		}
		m.Stop(v.reason, detail)
		return
	}
}

// yieldEvery is how long a vCPU goroutine keeps its P before it gives it
// up of its own accord: inside the Go runtime's 10 ms time slice, with
// room for the exit that the check waits for and for the hand-off itself.
const yieldEvery = 8 * time.Millisecond

// yielder makes a vCPU goroutine reschedule itself before the runtime
// does it by force. A vCPU loop never blocks in Go, so to the scheduler it
// is one goroutine running for ever, and every 10 ms sysmon preempts it:
// a signal (an extra exit), its P taken from under the KVM_RUN syscall and
// handed to another thread, and sysmon itself then polling every 20 µs for
// a while. That was most of vmm's thread switches in an exit-heavy run. A
// voluntary yield costs one hand-off of the locked thread (a few futex
// wake-ups) and keeps sysmon asleep; a clock read per exit (~40 ns, vDSO)
// is the price of knowing when.
type yielder struct{ last time.Time }

func (y *yielder) maybeYield() {
	if time.Since(y.last) < yieldEvery {
		return
	}
	runtime.Gosched()
	y.last = time.Now()
}

// fallback performs the instruction KVM failed on, when the emulate package
// knows it, and reports whether the guest can go on. An error means the
// guest's own state made the instruction fault (a bad gate or stack).
func (m *Machine) fallback(c *kvm.VCPU) (bool, error) {
	r, err := emulate.Step(c, m.mem)
	if err != nil || !r.Handled {
		return false, err
	}
	m.emulated.record(r.Mnemonic)
	return true, nil
}

// crashReport describes the vCPU after an abnormal exit: registers and, when
// KVM did not supply them, the instruction bytes at RIP.
func (m *Machine) crashReport(c *kvm.VCPU, exit *kvm.Exit) string {
	report := describeCPU(c)
	if exit.Reason == kvm.KVM_EXIT_INTERNAL_ERROR && len(exit.Internal.Insn) == 0 {
		if insn := m.instructionAt(c); len(insn) > 0 {
			report += fmt.Sprintf("; bytes at rip: % x", insn)
		}
	}
	return report
}

func (m *Machine) instructionAt(c *kvm.VCPU) []byte {
	r, err := c.GetRegs()
	if err != nil {
		return nil
	}
	t, err := c.Translate(r.RIP)
	if err != nil || t.Valid == 0 {
		return nil
	}
	buf := make([]byte, 15)
	for n := len(buf); n > 0; n-- { // the instruction may end near the end of RAM
		if m.mem.ReadAt(buf[:n], guestmem.GuestAddr(t.PhysicalAddress)) == nil {
			return buf[:n]
		}
	}
	return nil
}

func joinDetail(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}
