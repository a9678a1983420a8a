// Package devices holds the legacy devices on the port-I/O bus: the 8250/16550A
// UART behind the serial console and the i8042 controller whose reset line
// ends the VM on a guest reboot.
//
// A port-I/O device is any value with
//
//	Read(offset uint64, data []byte)
//	Write(offset uint64, data []byte)
//
// where offset is relative to the device's base port and len(data) is 1, 2
// or 4. The VMM calls these from vCPU threads, possibly from several at once,
// so every device locks its own state. Devices know nothing of KVM: interrupt
// lines, output writers, timers and reset hooks are passed in.
package devices

// IRQLine is one interrupt line into the guest's interrupt controllers. The
// VMM implements it with KVM_IRQ_LINE; tests record the levels.
//
// Devices call SetLevel only when their computed level changes, so an
// edge-triggered ISA line sees exactly one rising edge per new interrupt.
type IRQLine interface {
	SetLevel(high bool) error
}
