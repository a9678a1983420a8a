package kvm

import (
	"encoding/binary"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

func page() []byte { return make([]byte, 4096) }

func TestDecodeExit_IOOut(t *testing.T) {
	run := page()
	le := binary.LittleEndian
	le.PutUint32(run[runExitReason:], KVM_EXIT_IO)
	run[runIODirection] = KVM_EXIT_IO_OUT
	run[runIOSize] = 1
	le.PutUint16(run[runIOPort:], 0x3f8)
	le.PutUint32(run[runIOCount:], 3)
	le.PutUint64(run[runIODataOffset:], 0x1000-3)
	copy(run[0x1000-3:], "abc")
	e, err := DecodeExit(run)
	if err != nil {
		t.Fatal(err)
	}
	io := e.IO
	if e.Reason != KVM_EXIT_IO || io.Port != 0x3f8 || io.In || io.Size != 1 || io.Count != 3 || string(io.Data) != "abc" {
		t.Fatalf("got %#v", e)
	}
}

func TestDecodeExit_IODataOutsidePage_IsError(t *testing.T) {
	run := page()
	le := binary.LittleEndian
	le.PutUint32(run[runExitReason:], KVM_EXIT_IO)
	run[runIOSize] = 4
	le.PutUint32(run[runIOCount:], 2)
	le.PutUint64(run[runIODataOffset:], 0x1000-4)
	if _, err := DecodeExit(run); err == nil {
		t.Fatal("want an error for data running past the page")
	}
	le.PutUint64(run[runIODataOffset:], ^uint64(0))
	if _, err := DecodeExit(run); err == nil {
		t.Fatal("want an error for a wrapping offset")
	}
}

func TestDecodeExit_MMIORead(t *testing.T) {
	run := page()
	le := binary.LittleEndian
	le.PutUint32(run[runExitReason:], KVM_EXIT_MMIO)
	le.PutUint64(run[runMMIOPhysAddr:], 0xd000_0000)
	le.PutUint32(run[runMMIOLen:], 4)
	e, err := DecodeExit(run)
	if err != nil {
		t.Fatal(err)
	}
	m := e.MMIO
	if e.Reason != KVM_EXIT_MMIO || m.Addr != 0xd000_0000 || m.Write || len(m.Data) != 4 {
		t.Fatalf("got %#v", m)
	}
	copy(m.Data, []byte{1, 2, 3, 4})
	if !reflect.DeepEqual(run[runMMIOData:runMMIOData+4], []byte{1, 2, 3, 4}) {
		t.Fatal("MMIO read data does not alias kvm_run")
	}
	le.PutUint32(run[runMMIOLen:], 9)
	if _, err := DecodeExit(run); err == nil {
		t.Fatal("want an error for a 9-byte MMIO access")
	}
}

func TestDecodeExit_EmulationFailure_HasInstructionBytes(t *testing.T) {
	run := page()
	le := binary.LittleEndian
	le.PutUint32(run[runExitReason:], KVM_EXIT_INTERNAL_ERROR)
	le.PutUint32(run[runInternalSuberror:], KVM_INTERNAL_ERROR_EMULATION)
	le.PutUint32(run[runInternalNdata:], 4)
	le.PutUint64(run[runEmulationFlags:], KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)
	run[runEmulationInsnLen] = 3
	copy(run[runEmulationInsn:], []byte{0x0f, 0x01, 0xca}) // clac
	e, err := DecodeExit(run)
	if err != nil {
		t.Fatal(err)
	}
	if e.Reason != KVM_EXIT_INTERNAL_ERROR {
		t.Fatalf("reason %v, want internal_error", e.Reason)
	}
	ie := e.Internal
	if !reflect.DeepEqual(ie.Insn, []byte{0x0f, 0x01, 0xca}) {
		t.Fatalf("insn = % x", ie.Insn)
	}
	if s := ie.String(); s == "" {
		t.Fatal("empty description")
	}
}

func TestDecodeExit_SimpleReasons(t *testing.T) {
	for _, reason := range []ExitReason{KVM_EXIT_SHUTDOWN, KVM_EXIT_HLT, KVM_EXIT_INTR, KVM_EXIT_FAIL_ENTRY, 99} {
		want := Exit{Reason: reason}
		run := page()
		binary.LittleEndian.PutUint32(run[runExitReason:], uint32(reason))
		got, err := DecodeExit(run)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("reason %d: got %#v, %v", reason, got, err)
		}
	}
}

func TestDecodeExit_ShortPage_IsError(t *testing.T) {
	if _, err := DecodeExit(make([]byte, 10)); err == nil {
		t.Fatal("want error")
	}
}

// portAndMMIOPages are kvm_run pages as KVM leaves them after a one-byte
// OUT to port 0x80 and after a 4-byte MMIO write to 0xd0000000.
func portAndMMIOPages() (io, mmio []byte) {
	io, mmio = page(), page()
	le := binary.LittleEndian
	le.PutUint32(io[runExitReason:], KVM_EXIT_IO)
	io[runIODirection] = KVM_EXIT_IO_OUT
	io[runIOSize] = 1
	le.PutUint16(io[runIOPort:], 0x80)
	le.PutUint32(io[runIOCount:], 1)
	le.PutUint64(io[runIODataOffset:], 0x1000-1)
	le.PutUint32(mmio[runExitReason:], KVM_EXIT_MMIO)
	le.PutUint64(mmio[runMMIOPhysAddr:], 0xd000_0000)
	le.PutUint32(mmio[runMMIOLen:], 4)
	mmio[runMMIOIsWrite] = 1
	return io, mmio
}

// The exits a guest makes by the ten thousand must decode without garbage.
func TestDecodeExit_PortAndMMIO_DoNotAllocate(t *testing.T) {
	io, mmio := portAndMMIOPages()
	for _, run := range [][]byte{io, mmio} {
		if n := testing.AllocsPerRun(100, func() {
			if _, err := DecodeExit(run); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("reason %d: %v allocations per decode, want 0", binary.LittleEndian.Uint32(run[runExitReason:]), n)
		}
	}
}

func BenchmarkDecodeExit(b *testing.B) {
	io, mmio := portAndMMIOPages()
	for _, tc := range []struct {
		name string
		run  []byte
	}{{"io", io}, {"mmio", mmio}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if _, err := DecodeExit(tc.run); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestExitReason_String(t *testing.T) {
	for r, want := range map[ExitReason]string{KVM_EXIT_IO: "io", KVM_EXIT_MMIO: "mmio", KVM_EXIT_INTR: "intr", 99: "reason_99"} {
		if got := r.String(); got != want {
			t.Errorf("%d: %q, want %q", uint32(r), got, want)
		}
	}
}

func FuzzDecodeExit(f *testing.F) {
	f.Add(uint32(KVM_EXIT_IO), uint64(0x100), uint32(1), uint8(4))
	f.Add(uint32(KVM_EXIT_MMIO), uint64(0), uint32(8), uint8(0))
	f.Add(uint32(KVM_EXIT_INTERNAL_ERROR), uint64(1), uint32(200), uint8(255))
	f.Fuzz(func(t *testing.T, reason uint32, off uint64, n uint32, b uint8) {
		run := page()
		le := binary.LittleEndian
		le.PutUint32(run[runExitReason:], reason)
		for i := runUnion; i < runMinSize; i++ {
			run[i] = b
		}
		le.PutUint64(run[runIODataOffset:], off)
		le.PutUint32(run[runIOCount:], n)
		le.PutUint32(run[runMMIOLen:], n)
		le.PutUint32(run[runInternalNdata:], n)
		e, err := DecodeExit(run) // must not panic
		if err != nil {
			return
		}
		if e.Reason != ExitReason(reason) {
			t.Fatalf("reason %d decoded as %d", reason, e.Reason)
		}
		if e.Reason == KVM_EXIT_IO && len(e.IO.Data) != int(e.IO.Size)*int(e.IO.Count) {
			t.Fatalf("io data %d bytes for %d×%d", len(e.IO.Data), e.IO.Count, e.IO.Size)
		}
		if e.Reason == KVM_EXIT_MMIO && (len(e.MMIO.Data) == 0 || len(e.MMIO.Data) > 8) {
			t.Fatalf("mmio data %d bytes", len(e.MMIO.Data))
		}
	})
}

func TestOpen_CreatesVMAndVCPU(t *testing.T) {
	if _, err := os.Stat(DevicePath); err != nil {
		t.Skipf("SKIP: %s not available (%v): KVM tests need it", DevicePath, err)
	}
	sys, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	if sys.CheckExtension(KVM_CAP_IMMEDIATE_EXIT) == 0 {
		t.Error("KVM_CAP_IMMEDIATE_EXIT missing")
	}
	cpuid, err := sys.SupportedCPUID()
	if err != nil || len(cpuid) == 0 {
		t.Fatalf("SupportedCPUID: %d entries, %v", len(cpuid), err)
	}
	vm, err := sys.CreateVM()
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	if err := vm.CreateIRQChip(); err != nil {
		t.Fatal(err)
	}
	c, err := vm.CreateVCPU(0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetCPUID(cpuid); err != nil {
		t.Fatal(err)
	}
	s, err := c.GetSregs()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetSregs(s); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetLAPIC(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetMSRs([]uint32{0x10}); err != nil { // IA32_TIME_STAMP_COUNTER
		t.Fatal(err)
	}
	// With immediate_exit set, KVM_RUN returns at once as an interruption.
	c.SetImmediateExit(true)
	e, err := c.Run()
	if err != nil {
		t.Fatal(err)
	}
	if e.Reason != KVM_EXIT_INTR {
		t.Fatalf("got %#v, want KVM_EXIT_INTR", e)
	}
}

// TestRun_PortAndMMIOExits_DoNotAllocate runs a real-mode guest that
// writes port 0x80 and MMIO address 0x100000 (past its 1 MiB of RAM) in a
// loop: the whole KVM_RUN round trip, syscall and decode, must make no
// garbage.
func TestRun_PortAndMMIOExits_DoNotAllocate(t *testing.T) {
	code := []byte{
		0xB8, 0xFF, 0xFF, // mov ax, 0xffff
		0x8E, 0xD8, // mov ds, ax
		0xE6, 0x80, // loop: out 0x80, al
		0xA2, 0x10, 0x00, // mov [0x10], al (ds:0x10 = 0x100000)
		0xEB, 0xF9, // jmp loop
	}
	_, c := realModeVM(t, code)
	seen := map[ExitReason]int{}
	for range 4 {
		e, err := c.Run()
		if err != nil {
			t.Fatal(err)
		}
		seen[e.Reason]++
	}
	if seen[KVM_EXIT_IO] == 0 || seen[KVM_EXIT_MMIO] == 0 {
		t.Fatalf("exits %v, want both io and mmio", seen)
	}
	if n := testing.AllocsPerRun(200, func() {
		if _, err := c.Run(); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per KVM_RUN round trip, want 0", n)
	}
}

func TestOpenError_SaysHowToFix(t *testing.T) {
	e := &OpenError{Path: "/dev/kvm", Err: os.ErrPermission}
	if !errors.Is(e, ErrNoKVM) || !errors.Is(e, os.ErrPermission) {
		t.Fatal("OpenError must wrap ErrNoKVM and the cause")
	}
	if got := e.Error(); !strings.Contains(got, "kvm group") {
		t.Fatalf("message %q does not say how to fix", got)
	}
}
