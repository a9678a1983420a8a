// Package hostterm is the host side of the serial console: putting the
// user's terminal in raw mode and the escape sequence that lets the user
// control the VMM from a terminal whose every key goes to the guest.
//
// The escape character is Ctrl-A, as in QEMU's -nographic console:
//
//	Ctrl-A x       quit: the VMM stops the VM
//	Ctrl-A Ctrl-A  send one Ctrl-A to the guest
//	Ctrl-A h       print a short help
//
// Ctrl-A followed by any other byte sends both bytes to the guest unchanged.
// The VMM applies the escape filter only when stdin is a terminal, so piped
// input reaches the guest byte for byte.
package hostterm
